// The console's resources as react-admin lists: users (search, disable, enable), profiles,
// devices (search, move to another profile) and the audit log. A table on wide screens, a
// simple list on phones (no sideways scroll). The admin API does not sort, so columns don't.
import { useState, type FormEvent, type ReactNode } from "react";
import {
  DataTable,
  List,
  SimpleList,
  useListContext,
  useNotify,
  useUpdate,
  type DataTableColumnProps,
  type HttpError,
  type RaRecord,
} from "react-admin";
import { useMediaQuery, type Theme } from "@mui/material";
import { auditColumns } from "../components/auditColumns";
import { Field } from "../components/Field";
import { formatDateTime } from "../lib/time";
import { useApp } from "../state";
import type { AuditRecord, DeviceRecord, ProfileRecord, UserRecord } from "./dataProvider";

const usePhone = () => useMediaQuery((theme: Theme) => theme.breakpoints.down("sm"));

/** A labelled search box with a Search button: sets the list's `q` filter. */
function SearchBox({ label }: { label: string }) {
  const { filterValues, setFilters } = useListContext();
  const search = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const q = String(new FormData(e.currentTarget).get("q")).trim();
    setFilters(q ? { ...filterValues, q } : { ...filterValues, q: undefined }, {});
  };
  return (
    <form role="search" onSubmit={search}>
      <Field label={label} name="q" type="search" defaultValue={String(filterValues.q ?? "")} />
      <button type="submit">Search</button>
    </form>
  );
}

/** A list page: the search box (if any), then the table or, on a phone, the simple list. */
function ConsoleList({ search, wide, narrow }: { search?: string; wide: ReactNode; narrow: ReactNode }) {
  const phone = usePhone();
  return (
    <List
      actions={false}
      exporter={false}
      empty={false}
      disableSyncWithLocation
      sx={{ "& .RaList-content": { overflowX: "auto" } }}
    >
      {search && <SearchBox label={search} />}
      {phone ? narrow : wide}
    </List>
  );
}

/** A console table: no bulk actions, rows are not links. */
function ConsoleTable<T extends RaRecord>({ children }: { children: ReactNode }) {
  return (
    <DataTable<T> bulkActionButtons={false} rowClick={false}>
      {children}
    </DataTable>
  );
}

/** A column; the admin API does not sort, so none offers to. */
function Col<T extends RaRecord>(props: DataTableColumnProps<T>) {
  return <DataTable.Col<T> disableSort {...props} />;
}

/** The app's `.mono` look for ids (a class loses to Material UI's own cell styles). */
const mono = () => ({ fontFamily: "ui-monospace, monospace", fontSize: "0.8rem" });

function userStatus(u: UserRecord): string {
  return u.disabled_at ? "disabled" : u.is_admin ? "admin" : "active";
}

function DisableButton({ user }: { user: UserRecord }) {
  const [update, { isPending }] = useUpdate<UserRecord & { disabled?: boolean }, HttpError>();
  const notify = useNotify();
  const disable = !user.disabled_at;
  const verb = disable ? "Disable" : "Enable";
  const act = () =>
    update(
      "users",
      { id: user.id, data: { disabled: disable }, previousData: user },
      { onError: (e) => notify(e.message, { type: "error" }) },
    );
  return (
    <button type="button" aria-label={`${verb} ${user.email}`} disabled={isPending} onClick={act}>
      {verb}
    </button>
  );
}

export function UserList() {
  const { prefs } = useApp();
  const since = (u: UserRecord) => formatDateTime(new Date(u.created_at), prefs.clock);
  return (
    <ConsoleList
      search="Search users by email or name"
      wide={
        <ConsoleTable<UserRecord>>
          <Col source="email" label="Email" />
          <Col source="name" label="Name" />
          <Col source="created_at" label="Since" render={since} />
          <Col source="profile_count" label="Profiles" />
          <Col source="device_count" label="Devices" />
          <Col label="Status" render={userStatus} />
          <Col<UserRecord> label="Action" render={(u) => <DisableButton user={u} />} />
        </ConsoleTable>
      }
      narrow={
        <SimpleList<UserRecord>
          rowClick={false}
          primaryText={(u) => u.email}
          secondaryText={(u) => `${u.name} · ${userStatus(u)} · since ${since(u)}`}
          rightIcon={(u) => <DisableButton user={u} />}
        />
      }
    />
  );
}

export function ProfileList() {
  return (
    <ConsoleList
      search="Search profiles by name or manager"
      wide={
        <ConsoleTable<ProfileRecord>>
          <Col source="name" label="Name" />
          <Col source="kind" label="Kind" />
          <Col source="manager_email" label="Manager" />
          <Col source="timezone" label="Time zone" />
          <Col source="device_count" label="Devices" />
          <Col source="id" label="Id" cellSx={mono} />
        </ConsoleTable>
      }
      narrow={
        <SimpleList<ProfileRecord>
          rowClick={false}
          primaryText={(p) => p.name}
          secondaryText={(p) => (
            <>
              {`${p.kind} · ${p.manager_email} · ${p.device_count} devices`}
              <br />
              <span className="mono">{p.id}</span>
            </>
          )}
        />
      }
    />
  );
}

/** "Move": a form for the new profile's id, the API's message at the field if refused. */
function MoveDevice({ device }: { device: DeviceRecord }) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState("");
  const [update, { isPending }] = useUpdate<DeviceRecord, HttpError>();
  const move = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const profile_id = String(new FormData(e.currentTarget).get("profile_id"));
    update(
      "devices",
      { id: device.id, data: { profile_id }, previousData: device },
      {
        onSuccess: () => (setOpen(false), setError("")),
        onError: (err) => setError(err.body?.errors?.profile_id ?? err.message),
      },
    );
  };
  if (!open) {
    return (
      <button type="button" aria-label={`Move ${device.serial} to another profile`} onClick={() => setOpen(true)}>
        Move
      </button>
    );
  }
  return (
    <form onSubmit={move}>
      <Field label={`New profile id for ${device.serial}`} name="profile_id" required error={error} />
      <button type="submit" disabled={isPending}>
        Move
      </button>
    </form>
  );
}

export function DeviceList() {
  return (
    <ConsoleList
      search="Search devices by serial or model"
      wide={
        <ConsoleTable<DeviceRecord>>
          <Col source="serial" label="Serial" />
          <Col source="kind" label="Kind" />
          <Col source="model" label="Model" />
          <Col source="profile_id" label="Profile" cellSx={mono} />
          <Col<DeviceRecord> label="Action" render={(d) => <MoveDevice device={d} />} />
        </ConsoleTable>
      }
      narrow={
        <SimpleList<DeviceRecord>
          rowClick={false}
          primaryText={(d) => `${d.serial} (${d.kind})`}
          secondaryText={(d) => <span className="mono">{d.profile_id}</span>}
          rightIcon={(d) => <MoveDevice device={d} />}
        />
      }
    />
  );
}

export function AuditList() {
  const { prefs } = useApp();
  const audit = auditColumns(prefs.clock);
  return (
    <ConsoleList
      wide={
        <ConsoleTable<AuditRecord>>
          <Col label={audit.when.header} render={audit.when.cell} />
          <Col label={audit.who.header} render={audit.who.cell} />
          <Col source="profile_id" label="Profile" cellSx={mono} />
          <Col label={audit.what.header} render={audit.what.cell} />
          <Col source="client_addr" label="From" />
        </ConsoleTable>
      }
      narrow={
        <SimpleList<AuditRecord>
          rowClick={false}
          primaryText={(a) => <>{audit.what.cell(a)}</>}
          secondaryText={(a) => (
            <>
              {audit.when.cell(a)} · {audit.who.cell(a)}
            </>
          )}
        />
      }
    />
  );
}

