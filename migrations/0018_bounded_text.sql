-- Up Migration
-- Typed text is bounded (issue 12). A btree index row holds at most 2704 bytes, so one event with a 3 KB
-- userPrincipalName or location.countryOrRegion (or city, ipAddress, appDisplayName, a failure reason, a CA policy
-- name, a risk event type…) failed its whole page with 54000 "index row size exceeds btree version 4 maximum", in
-- sign_ins' own indexes or in the rollups, travel pairs, first-seen countries and child tables its triggers fill.
--
-- The fix is in the two helpers every typed text value comes from, so no table is rewritten and no view changes:
-- signin_text (the generated columns of sign_ins and directory_audits, the CA, MFA and authentication-detail values
-- the triggers extract) and signin_text_array (risk event types, enforced controls) now cut a value longer than
-- 400 bytes to its first 400 bytes, on a character boundary. The widest index row then stays far below the limit:
-- sign_ins_travel_user_idx holds four such columns (≤ 4 × 400 bytes) plus the id (≤ 200 characters, ≤ 600 bytes)
-- and the tenant id. `raw` always keeps the full value. Views keep every column and its meaning; a typed value is
-- the field as sent when it fits 400 bytes (every real Graph field does: the longest seen are user agents and
-- status details of ~150 characters), else its first 400 bytes. Rows stored before this migration keep the values
-- they were stored with (none can exceed an index's limit, or it would not have been stored).
--
-- signin_text stays an inlinable SQL function (the planner folds it into each generated column: no call per
-- column); only a value over the bound reaches the PL/pgSQL cut.

-- The first `max_bytes` bytes of `t` (in the database encoding), cut on a character boundary.
create function signin_cut(t text, max_bytes integer) returns text
language plpgsql immutable strict parallel safe as $$
declare
  r text := left(t, max_bytes);
begin
  -- Each character is 1..4 bytes: dropping a quarter of the excess (in characters) never goes below max_bytes.
  while octet_length(r) > max_bytes loop
    r := left(r, length(r) - greatest(1, (octet_length(r) - max_bytes) / 4));
  end loop;
  return r;
end
$$;

create or replace function signin_text(j jsonb) returns text
language sql immutable parallel safe as $$
  select case when jsonb_typeof(j) in ('string', 'number', 'boolean') then
    case when octet_length(j #>> '{}') <= 400 then j #>> '{}' else signin_cut(j #>> '{}', 400) end
  end
$$;

create or replace function signin_text_array(j jsonb) returns text[]
language sql immutable parallel safe as $$
  select case when jsonb_typeof(j) = 'array' then array(
    select case when octet_length(e) <= 400 then e else signin_cut(e, 400) end
    from jsonb_array_elements_text(j) as x(e)
  ) end
$$;

-- Down Migration
create or replace function signin_text_array(j jsonb) returns text[]
language sql immutable parallel safe as $$
  select case when jsonb_typeof(j) = 'array' then array(select jsonb_array_elements_text(j)) end
$$;

create or replace function signin_text(j jsonb) returns text
language sql immutable parallel safe as $$
  select case jsonb_typeof(j) when 'string' then j #>> '{}' when 'number' then j #>> '{}' when 'boolean' then j #>> '{}' end
$$;

drop function if exists signin_cut(text, integer);
