"""Masking (SPEC §4): the original's methods exactly, HMAC default, key handling, natural rack order."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from starcompactor.errors import ConfigError
from starcompactor.events import MachineEvent
from starcompactor.mask import (
    KEY_ENV,
    Masker,
    MaskingKey,
    load_key,
    mask_machine_events,
    natural_key,
    rack_ranks,
)


def key(secret: bytes) -> MaskingKey:
    return MaskingKey(secret, "test")


def test_sha2_salted_vector():
    assert Masker("sha2-salted", key(b"chameleon"))("c01-01") == "a08ff332b6d06f2f6693e523e7d722eb"


def test_sha1_raw_and_hmac_and_none():
    assert Masker("sha1-raw", key(b"chameleon"))("c01-01") == hashlib.sha1(b"chameleonc01-01").hexdigest()
    assert len(Masker("sha1-raw", key(b"s"))("x")) == 40
    assert (
        Masker("hmac-sha256", key(b"k"))("c01-01")
        == hmac.new(b"k", b"c01-01", hashlib.sha256).hexdigest()[:32]
    )
    assert Masker("none")("c01-01") == "c01-01"


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1), st.binary(min_size=1, max_size=32))
def test_hmac_is_deterministic_and_key_dependent(value, secret):
    a = Masker("hmac-sha256", key(secret))
    assert a(value) == Masker("hmac-sha256", key(secret))(value)
    assert a(value) != Masker("hmac-sha256", key(secret + b"x"))(value)


def test_empty_stays_empty():
    m = Masker("hmac-sha256", key(b"k"))
    assert m("") == "" and m(None) == ""


def test_bad_method_and_missing_key():
    with pytest.raises(ConfigError):
        Masker("md5", key(b"k"))
    with pytest.raises(ConfigError):
        Masker("hmac-sha256", None)


def test_user_key_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "xdg" / "starcompactor" / "masking.key"
    first = load_key(environ={}, default_path=path)
    assert "created now" in first.source and stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_key(environ={}, default_path=path)
    assert second.secret == first.secret and "(created now)" not in second.source


def test_key_precedence(tmp_path):
    f = tmp_path / "k"
    f.write_bytes(b"from-file\n")
    assert load_key(f, environ={KEY_ENV: "env"}).secret == b"from-file"
    assert load_key(None, environ={KEY_ENV: "env"}, legacy_salt="salt").secret == b"env"
    assert load_key(None, environ={}, legacy_salt="salt", default_path=tmp_path / "d").secret == b"salt"
    assert not (tmp_path / "d").exists()
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ConfigError, match="empty"):
        load_key(tmp_path / "empty", environ={})


def test_default_key_path_honours_xdg(tmp_path, monkeypatch):
    from starcompactor.mask import default_key_path

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_key_path() == tmp_path / "starcompactor" / "masking.key"


def test_fingerprint_is_not_the_key():
    k = key(b"secret-key")
    assert len(k.fingerprint) == 16 and "secret" not in k.fingerprint
    assert k.fingerprint != key(b"other").fingerprint


def test_natural_rack_order():
    assert rack_ranks(["10", "2", "9", None, "2"]) == {"2": 0, "9": 1, "10": 2}
    assert rack_ranks(["r10", "r2", "c01", "UNKNOWN"]) == {"UNKNOWN": 0, "c01": 1, "r2": 2, "r10": 3}
    assert sorted(["a10b", "a2b", "a2a"], key=natural_key) == ["a2a", "a2b", "a10b"]


def test_mask_machine_events_ranks_racks_over_all_events():
    t = dt.datetime(2024, 1, 1)
    events = [
        MachineEvent(t, "h1", "CREATE", {"rack": "r10"}),
        MachineEvent(t, "h2", "CREATE", {"rack": "r2"}),
        MachineEvent(t, "h2", "DELETE", {}),
    ]
    masked = mask_machine_events(events, Masker("sha2-salted", key(b"chameleon")), "rack")
    assert [e.properties for e in masked] == [{"rack": 1}, {"rack": 0}, {}]
    assert masked[0].host == hashlib.sha256(b"chameleonh1").hexdigest()[:32]
    assert events[0].properties == {"rack": "r10"}  # inputs untouched


def test_cache_starts_over_when_full_and_values_stay_right():
    from starcompactor.mask import _MaskCache

    masker = Masker("hmac-sha256", MaskingKey(b"k", "test"))
    small = _MaskCache(masker._hash, limit=4)
    values = [f"v{i}" for i in range(10)]
    assert [small[v] for v in values] == [masker(v) for v in values]
    assert len(small) <= 4 and small[None] == "" and small[""] == ""


@settings(max_examples=200)
@given(st.one_of(st.none(), st.text()), st.sampled_from(["hmac-sha256", "sha2-salted", "sha1-raw", "none"]))
def test_uncached_masking_equals_the_cached_one(value, method):
    masker = Masker(method, MaskingKey(b"secret", "test"))
    size = len(masker.table)
    assert masker.uncached(value) == masker(value)
    masker.uncached(f"{value}-never-cached")
    assert len(masker.table) <= size + 1  # only the cached call may have added an entry
