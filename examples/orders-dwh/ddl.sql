-- The orders DWH's tables with the seed's types (formats.md "orders-dwh"):
-- uuid keys, a json payload, timestamps without a zone (UTC). Optional:
-- without it Ingesta creates the same tables on their first commit, with
-- text keys and payload and timestamptz times. Ingesta adopts these as
-- they are (docs/warehouse.md: an existing table is adopted).
--   psql "$INGESTA_WAREHOUSE" -v ON_ERROR_STOP=1 -f examples/orders-dwh/ddl.sql
CREATE SCHEMA IF NOT EXISTS stg;
CREATE SCHEMA IF NOT EXISTS dds;
CREATE SCHEMA IF NOT EXISTS cdm;

CREATE TABLE stg.order_events (
    id serial PRIMARY KEY,
    object_id int NOT NULL UNIQUE,
    payload json NOT NULL,
    object_type varchar NOT NULL,
    sent_dttm timestamp NOT NULL
);

-- hubs
CREATE TABLE dds.h_user (h_user_pk uuid PRIMARY KEY, user_id varchar NOT NULL UNIQUE,
    load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.h_product (h_product_pk uuid PRIMARY KEY, product_id varchar NOT NULL UNIQUE,
    load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.h_category (h_category_pk uuid PRIMARY KEY, category_name varchar NOT NULL UNIQUE,
    load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.h_restaurant (h_restaurant_pk uuid PRIMARY KEY, restaurant_id varchar NOT NULL UNIQUE,
    load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.h_order (h_order_pk uuid PRIMARY KEY, order_id int NOT NULL UNIQUE, order_dt timestamp NOT NULL,
    load_dt timestamp NOT NULL, load_src varchar NOT NULL);

-- links
CREATE TABLE dds.l_order_product (hk_order_product_pk uuid PRIMARY KEY,
    h_order_pk uuid NOT NULL, h_product_pk uuid NOT NULL, load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.l_product_restaurant (hk_product_restaurant_pk uuid PRIMARY KEY,
    h_product_pk uuid NOT NULL, h_restaurant_pk uuid NOT NULL, load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.l_product_category (hk_product_category_pk uuid PRIMARY KEY,
    h_product_pk uuid NOT NULL, h_category_pk uuid NOT NULL, load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.l_order_user (hk_order_user_pk uuid PRIMARY KEY,
    h_order_pk uuid NOT NULL, h_user_pk uuid NOT NULL, load_dt timestamp NOT NULL, load_src varchar NOT NULL);

-- satellites: one row per hashdiff; load_dt is the event time the state was first seen
CREATE TABLE dds.s_user_names (hk_user_names_hashdiff uuid PRIMARY KEY, h_user_pk uuid NOT NULL,
    username varchar NOT NULL, userlogin varchar NOT NULL, load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.s_product_names (hk_product_names_hashdiff uuid PRIMARY KEY, h_product_pk uuid NOT NULL,
    name varchar NOT NULL, load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.s_restaurant_names (hk_restaurant_names_hashdiff uuid PRIMARY KEY, h_restaurant_pk uuid NOT NULL,
    name varchar NOT NULL, load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.s_order_cost (hk_order_cost_hashdiff uuid PRIMARY KEY, h_order_pk uuid NOT NULL,
    cost numeric(19, 5) NOT NULL, payment numeric(19, 5) NOT NULL, load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE TABLE dds.s_order_status (hk_order_status_hashdiff uuid PRIMARY KEY, h_order_pk uuid NOT NULL,
    status varchar NOT NULL, load_dt timestamp NOT NULL, load_src varchar NOT NULL);
CREATE INDEX ON dds.s_order_status (h_order_pk, load_dt);

-- marts (`seq`: in the three-service shape, the offset of the DDS message
-- that set the count, which a redelivered older message cannot undo)
CREATE TABLE cdm.user_product_counters (id serial PRIMARY KEY, user_id uuid NOT NULL, product_id uuid NOT NULL,
    product_name varchar NOT NULL, order_cnt int NOT NULL CHECK (order_cnt >= 0), seq bigint,
    UNIQUE (user_id, product_id));
CREATE TABLE cdm.user_category_counters (id serial PRIMARY KEY, user_id uuid NOT NULL, category_id uuid NOT NULL,
    category_name varchar NOT NULL, order_cnt int NOT NULL CHECK (order_cnt >= 0), seq bigint,
    UNIQUE (user_id, category_id));
CREATE TABLE cdm.user_tags (user_id uuid NOT NULL, tag varchar NOT NULL, category_name varchar NOT NULL,
    threshold int NOT NULL, order_cnt int NOT NULL, assigned boolean NOT NULL, assigned_at timestamp, seq bigint,
    PRIMARY KEY (user_id, tag));
