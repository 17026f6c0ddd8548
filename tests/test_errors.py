"""Errors cross process boundaries (process pools, Dask) and keep their one-line message."""

from __future__ import annotations

import pickle

import pytest

from starcompactor import errors

SAMPLES = [
    errors.StarCompactorError("plain"),
    errors.ConfigError("starcompactor.config: bad"),
    errors.OutputError("out.csv", "cannot write: No space left on device"),
    errors.MissingDependencyError("pyarrow", "parquet", "--format parquet"),
    errors.DumpError("a.sql.gz", "boom", 12),
    errors.UnknownCompressionError("a.zip", "zip archives are not supported"),
    errors.CorruptArchiveError("a.sql.gz", "invalid block"),
    errors.TruncatedDumpError("a.sql.bz2", "ends early", 99),
    errors.NotADumpError("a.csv", "first line is not SQL"),
    errors.DumpSyntaxError("a.sql", "malformed value"),
    errors.LineTooLongError("a.sql", "too long", 5),
    errors.UnknownColumnsError("a.sql", "nova", "compute_nodes", 7),
    errors.MissingTableError("a.sql", "no compute_nodes"),
    errors.DatabaseError("db.example:3306", "nova", "Access denied"),
    errors.ApiError("compute: 503"),
    errors.NoBackupsError("/backups: no backup files"),
    errors.TraceReadError("machine_events.csv", "not a trace: no EVENT column"),
    errors.BadDumpError(
        "/backups/a.sql.gz", "/backups/a.sql.gz: truncated dump: ends early", "TruncatedDumpError"
    ),
    errors.SnapshotTimeError("/backups/a.sql.gz", "/backups/b.sql.gz", "2024-01-05T03:00:00"),
    errors.AuditLogError("/backups/a.sql.gz", "audit_nova_services", "not an audit table: no column id"),
]


def _error_classes(base):
    for sub in base.__subclasses__():
        yield sub
        yield from _error_classes(sub)


def test_every_error_class_is_sampled():
    """A new error class must be added to SAMPLES, so that its pickling is checked too."""
    assert set(_error_classes(errors.StarCompactorError)) <= {type(e) for e in SAMPLES}


@pytest.mark.parametrize("error", SAMPLES, ids=lambda e: type(e).__name__)
def test_error_survives_pickling(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert "\n" not in str(copy)


def test_missing_dependency_says_how_to_install():
    error = pickle.loads(
        pickle.dumps(errors.MissingDependencyError("pyarrow", "parquet", "--format parquet"))
    )
    assert str(error) == "--format parquet needs the 'pyarrow' package: pip install 'starcompactor[parquet]'"


def test_dump_errors_name_the_file_and_what_is_wrong():
    text = str(errors.UnknownColumnsError("/backups/x.sql.gz", "nova", "compute_nodes", 10))
    assert text.startswith("/backups/x.sql.gz: columns unknown: rows of `nova.compute_nodes`")
    assert "(at decompressed byte 10)" in text


def test_internal_errors_keep_their_message_across_processes():
    tokenize = pickle.loads(pickle.dumps(errors.TokenizeError("malformed value", 17)))
    assert str(tokenize) == "malformed value at statement byte 17" and tokenize.position == 17
    bad = pickle.loads(
        pickle.dumps(errors.BadDumpError("a.gz", "a.gz: corrupt archive: gzip", "CorruptArchiveError"))
    )
    assert (bad.path, bad.kind, str(bad)) == ("a.gz", "CorruptArchiveError", "a.gz: corrupt archive: gzip")
