-- A notice about a sensitive service sent to the referring organisation is listed only to tokens
-- holding this scope (e.g. sensitive:trafficking): its existence and priority would reveal the category.
alter table {schema}.notifications add column scope text;
