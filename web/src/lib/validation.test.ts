import { describe, expect, it } from "vitest";
import { fieldErrors, fieldKey } from "./validation";

describe("API validation errors by field", () => {
  it("names the field after body/query", () => {
    expect(fieldKey(["body", "glucose", 1, "threshold"])).toBe("glucose.1.threshold");
    expect(fieldKey(["query", "window"])).toBe("window");
  });
  it("joins several messages for one field and keeps a plain detail", () => {
    const errors = fieldErrors([
      { loc: ["body", "email"], msg: "not an email" },
      { loc: ["body", "email"], msg: "too long" },
      { loc: ["body", "password"], msg: "too common" },
    ]);
    expect(errors).toEqual({ email: "not an email; too long", password: "too common" });
    expect(fieldErrors("share not found")).toEqual({ "": "share not found" });
  });
});
