import { cleanup, render } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { Table, type Column } from "./Table";

afterEach(cleanup);

type Row = { id: string; label: string; value: number };

const columns: Column<Row>[] = [
  { header: "Metric", cell: (r) => r.label, rowHeader: true },
  { header: "Value", cell: (r) => `${r.value} %` },
  { header: "Id", cell: (r) => r.id, className: "mono" },
];

describe("data table", () => {
  it("scopes the column headers and puts each row's cells under them", () => {
    const { container } = render(
      <Table
        columns={columns}
        rows={[
          { id: "a", label: "In range", value: 72 },
          { id: "b", label: "Below 70", value: 3 },
        ]}
        rowKey={(r) => r.id}
        caption={<caption>Ranges</caption>}
      />,
    );
    const text = (nodes: NodeListOf<Element>) => Array.from(nodes, (n) => n.textContent);
    expect(container.querySelector("table > caption")?.textContent).toBe("Ranges");
    expect(text(container.querySelectorAll('thead th[scope="col"]'))).toEqual(["Metric", "Value", "Id"]);
    expect(text(container.querySelectorAll('tbody th[scope="row"]'))).toEqual(["In range", "Below 70"]);
    const cells = container.querySelectorAll("tbody td");
    expect(text(cells)).toEqual(["72 %", "a", "3 %", "b"]);
    expect(cells[1].className).toBe("mono");
    expect(cells[0].hasAttribute("class")).toBe(false);
  });
  it("shows only the header row without rows", () => {
    const { container } = render(<Table columns={columns} rows={[]} rowKey={(r) => r.id} />);
    expect(container.querySelectorAll("tr")).toHaveLength(1);
    expect(container.querySelectorAll("tbody tr")).toHaveLength(0);
  });
});
