import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { fieldErrors } from "../lib/validation";
import { Field, FormError } from "./Field";

afterEach(cleanup);

describe("form validation display", () => {
  it("shows the API's message next to its field and ties it to the input", () => {
    const errors = fieldErrors([{ loc: ["body", "email"], msg: "value is not a valid email" }]);
    render(
      <>
        <Field label="Email" error={errors.email} />
        <Field label="Password" error={errors.password} />
      </>,
    );
    const email = screen.getByLabelText("Email");
    expect(email.getAttribute("aria-invalid")).toBe("true");
    const message = document.getElementById(email.getAttribute("aria-describedby")!);
    expect(message?.textContent).toBe("value is not a valid email");
    const password = screen.getByLabelText("Password");
    expect(password.hasAttribute("aria-invalid")).toBe(false);
    expect(password.hasAttribute("aria-describedby")).toBe(false);
  });
  it("announces a form-level error as an alert, and nothing without one", () => {
    const { rerender } = render(<FormError message={undefined} />);
    expect(screen.queryByRole("alert")).toBeNull();
    rerender(<FormError message="wrong email or password" />);
    expect(screen.getByRole("alert").textContent).toBe("wrong email or password");
  });
});
