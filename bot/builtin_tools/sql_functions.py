"""The functions a data analyst's query may call: an allow-list, not a deny-list.

A deny-list has to guess every function that acts on the server (PostgreSQL has thousands, and
extensions add more: ``pg_stat_reset``, ``pg_log_backend_memory_contexts``, ``pg_backup_start``,
``set_config``, ``lo_import``, ``dblink``, file readers…); one it misses runs. So only the
functions listed here, all of them known to have no effect but their result, pass
:func:`bot.builtin_tools.sql_check.check_query`, and on SQLite the connection's authorizer
refuses any other function the statement (or a view it reads) calls. Everything else, user
defined functions included, is refused with the function's name, unless the admin lists it in
``data_analyst.allowed_functions`` (``my_fn`` or ``analytics.my_fn``).

The names are lowercase, as written in SQL, for both dialects together (a PostgreSQL-only name
never resolves on SQLite and the other way round). A call qualified with ``pg_catalog.`` is
the built-in and checked by its bare name; any other qualified call (``analytics.my_fn``)
must be listed by the admin with its schema. A quoted name (``"jsonb_typeof"(x)``) of a call
sqlglot does not know is refused: it runs quoted, case-sensitive, maybe another function. SQL
written as syntax rather than as a call (``CAST``, ``EXTRACT``, ``CASE``…) is checked under
the names sqlglot gives it (:data:`SYNTAX`); operators are not calls.

Only the standard library here; the SQLite worker process gets :data:`SQLITE_AUTHORIZED` (and
the admin's names) from its parent.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ALLOWED_FUNCTIONS",
    "FUNCTION_GROUPS",
    "SQLITE_AUTHORIZED",
    "SYNTAX",
    "function_allowed",
    "normalize_names",
]

#: The allow-list by kind: each group is a string of names separated by blanks.
FUNCTION_GROUPS: dict[str, str] = {
    "aggregates": """
        count sum avg min max total group_concat string_agg array_agg json_agg jsonb_agg
        json_object_agg jsonb_object_agg json_group_array json_group_object bool_and bool_or
        every bit_and bit_or bit_xor stddev stddev_pop stddev_samp variance var_pop var_samp
        corr covar_pop covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2
        regr_slope regr_sxx regr_sxy regr_syy percentile_cont percentile_disc mode any_value
    """,
    "window": """
        row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value
        last_value nth_value
    """,
    "conditional": """
        coalesce nullif greatest least ifnull iif num_nulls num_nonnulls likely unlikely
        likelihood
    """,
    "casts and types": """
        typeof pg_typeof to_char to_number to_date to_timestamp
    """,
    "strings": """
        length char_length character_length octet_length bit_length lower upper initcap
        trim ltrim rtrim btrim lpad rpad left right substr substring overlay position strpos
        instr replace translate reverse repeat concat concat_ws format printf split_part
        string_to_array array_to_string string_to_table regexp_replace regexp_match
        regexp_matches regexp_split_to_array regexp_split_to_table regexp_count regexp_instr
        regexp_like regexp_substr starts_with ascii chr char unicode quote quote_ident
        quote_literal quote_nullable md5 sha224 sha256 sha384 sha512 encode decode to_hex hex
        unhex soundex normalize like glob
    """,
    "math": """
        abs ceil ceiling floor round trunc sign sqrt cbrt power pow exp ln log log10 log2 mod
        div pi degrees radians sin cos tan cot asin acos atan atan2 sinh cosh tanh asinh acosh
        atanh width_bucket gcd lcm factorial scale min_scale trim_scale random
    """,
    "dates and times": """
        now current_date current_time current_timestamp localtime localtimestamp
        clock_timestamp statement_timestamp transaction_timestamp date_trunc date_part
        date_bin age make_date make_time make_timestamp make_timestamptz make_interval
        justify_days justify_hours justify_interval isfinite timezone date time datetime
        julianday unixepoch strftime timediff
    """,
    "json": """
        json jsonb to_json to_jsonb row_to_json array_to_json json_build_array
        json_build_object jsonb_build_array jsonb_build_object json_object jsonb_object
        json_array json_array_length jsonb_array_length json_array_elements
        jsonb_array_elements json_array_elements_text jsonb_array_elements_text json_each
        jsonb_each json_each_text jsonb_each_text json_tree json_extract json_extract_path
        jsonb_extract_path json_extract_path_text jsonb_extract_path_text json_object_keys
        jsonb_object_keys json_typeof jsonb_typeof json_type json_valid json_quote json_patch
        json_insert json_replace json_set json_remove json_strip_nulls jsonb_strip_nulls
        jsonb_set jsonb_insert jsonb_pretty jsonb_path_query jsonb_path_query_array
        jsonb_path_query_first jsonb_path_exists jsonb_path_match json_to_record
        json_to_recordset jsonb_to_record jsonb_to_recordset
    """,
    "arrays and sets": """
        array_length cardinality array_append array_prepend array_cat array_position
        array_positions array_remove array_replace array_dims array_lower array_upper
        array_fill unnest generate_series generate_subscripts
    """,
    "sqlite blobs and full-text search": """
        zeroblob randomblob bm25 highlight snippet matchinfo offsets
    """,
    # SQLite's authorizer names these operators as the functions that run them.
    "operators": """
        -> ->> like glob row
    """,
}

#: How sqlglot names SQL written as syntax rather than as a call, and calls it parses
#: specially (``CAST(x AS int)`` and ``x::int`` are cast, ``CASE`` case, ``ARRAY[…]`` array,
#: ``string_agg(x, ',')`` group_concat, ``json_agg`` jsonarrayagg, SQLite's ``strftime`` wraps
#: its argument in tsordstotimestamp); only checked for such syntax, never for a call written
#: with that name. Operators (``AND``, ``->``, ``@>``, ``~`` …) are not calls and pass.
SYNTAX: frozenset[str] = frozenset(
    """
    case if cast try_cast exists extract array struct trim substring overlay str_position
    group_concat current_date current_time current_timestamp localtime localtimestamp
    jsonarrayagg jsonobject tsordstotimestamp
    """.split()
)

#: Every allowed function name.
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    name for names in FUNCTION_GROUPS.values() for name in names.split()
)

#: What SQLite's authorizer admits (it names each function a statement or a view calls).
SQLITE_AUTHORIZED: frozenset[str] = ALLOWED_FUNCTIONS


def normalize_names(names: Iterable[str]) -> frozenset[str]:
    """The admin's ``allowed_functions`` as lowercase names (``pg_catalog.`` dropped)."""
    out = set()
    for name in names:
        clean = name.strip().strip('"').lower()
        if clean.startswith("pg_catalog."):
            clean = clean.removeprefix("pg_catalog.")
        if clean:
            out.add(clean)
    return frozenset(out)


def function_allowed(name: str, schema: str | None, extra: frozenset[str] = frozenset()) -> bool:
    """Whether ``schema.name(…)`` (``schema`` None when unqualified) may be called.

    ``extra`` is :func:`normalize_names` of the admin's list.
    """
    name = name.lower()
    if schema is None or schema.lower() == "pg_catalog":
        return name in ALLOWED_FUNCTIONS or name in extra
    return f"{schema.lower()}.{name}" in extra
