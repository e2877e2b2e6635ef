"""Hostile operators' settings: a hostile config file, environment variables set to garbage,
server URLs and tokens httpx cannot send, rule packs holding FIFOs and devices, key files that
are FIFOs nothing writes to (and a key given through a pipe, which must still be read). Every
case ends in a clear error, exit 2 naming what was wrong: never a traceback or a hang.
(docs/robustness.md, "Faults and operators"; split from test_hostile_operators.py, whose CLI
runner it uses.)"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from straits.errors import InputError
from straits.store.note import Signer
from test_hostile_operators import PACK, REQUEST, cli


# --- the config file and the environment ----------------------------------------------------------
def _config_cases(tmp: Path) -> dict[str, Path]:
    nested = tmp / "nested.toml"
    nested.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    big = tmp / "big.toml"
    big.write_text('actor = "' + "a" * (1 << 20) + '"\n')
    fifo = tmp / "fifo.toml"
    os.mkfifo(fifo)
    return {
        "nested": nested,
        "big": big,
        "fifo": fifo,
        "device": Path("/dev/zero"),
        "directory": tmp,
    }


@pytest.mark.parametrize("case", ["nested", "big", "fifo", "device", "directory"])
def test_a_hostile_config_file_is_exit_2(tmp_path: Path, case: str) -> None:
    config = _config_cases(tmp_path)[case]
    code, _ = cli(
        "--config", str(config), "ledger", "verify", "--db", f"sqlite:///{tmp_path / 'x.db'}"
    )
    assert code == 2


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('actor = "a\\u0000b"', "actor"),
        ('actor = "\\u001b]0;pwned\\u0007"', "actor"),
        ('actor = "' + "a" * 201 + '"', "actor"),
        ('server = "ftp://host"', "server"),
        ('server = "http://"', "server"),
        ('server = "http://[::1"', "server"),
        ('token = "two words"', "token"),
        ('token = "caf\\u00e9"', "token"),
    ],
)
def test_a_config_value_no_command_could_use_names_the_file(
    tmp_path: Path, line: str, key: str
) -> None:
    """Refused when the file is read, naming it and the key (they were refused later as if
    they came from ``--actor``, ``--server`` or ``--token``, flags the user never passed)."""
    config = tmp_path / "straits.toml"
    config.write_text(line + "\n")
    config.chmod(0o600)
    code, err = cli("--config", str(config), "config", "show")
    assert code == 2
    assert f"{config}: {key}:" in err


@pytest.mark.parametrize("value", ["garbage", "64M", "0", "-1", "9" * 5000, "1e3", "nan"])
def test_a_garbage_input_cap_is_exit_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from straits.limits import max_input_bytes

    monkeypatch.setenv("STRAITS_MAX_INPUT_BYTES", value)
    with pytest.raises(InputError) as caught:
        max_input_bytes()
    assert caught.value.path == "STRAITS_MAX_INPUT_BYTES"
    code, _ = cli("check", stdin=REQUEST)
    assert code == 2


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("STRAITS_MAX_BODY_BYTES", "9" * 5000),
        ("STRAITS_MAX_BODY_BYTES", "0"),
        ("STRAITS_PLAN_WORKERS", "99999999999999999999"),
        ("STRAITS_PLAN_WORKERS", "-1"),
        ("STRAITS_PLAN_ATTEMPTS", "0"),
        ("STRAITS_PLAN_ATTEMPTS", "1000000"),
        ("STRAITS_PLAN_LEASE_S", "inf"),
        ("STRAITS_PLAN_LEASE_S", "nan"),
        ("STRAITS_QUEUE_TIMEOUT_S", "0"),
        ("STRAITS_BODY_TIMEOUT_S", "garbage"),
        ("STRAITS_WRITE_TIMEOUT_S", "inf"),
        ("STRAITS_WRITE_TIMEOUT_S", "0"),
        ("STRAITS_WRITE_MIN_RATE", "-1"),
        ("STRAITS_WRITE_MIN_RATE", "inf"),
        ("STRAITS_POLICY_DATE", "2025-02-30"),
        # date51: read with date.fromisoformat, which takes ISO basic and week dates and any
        # year; year 1 checked every SkyPilot launch against no rules at all
        ("STRAITS_POLICY_DATE", "20250601"),
        ("STRAITS_POLICY_DATE", "2025-W23-1"),
        ("STRAITS_POLICY_DATE", "0001-01-01"),
        ("STRAITS_POLICY_DATE", "1999-12-31"),
        ("STRAITS_POLICY_DATE", "2101-01-01"),
        ("STRAITS_POLICY_DATE", "9999-12-31"),
    ],
)
def test_server_settings_from_a_garbage_environment_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    from straits.server.settings import Settings

    monkeypatch.setenv(var, value)
    with pytest.raises(InputError) as caught:
        Settings.from_env()
    assert caught.value.path == var


@pytest.mark.parametrize(
    ("value", "day"),
    [("2000-01-01", dt.date(2000, 1, 1)), ("2100-12-31", dt.date(2100, 12, 31))],
)
def test_a_policy_date_at_the_edges_of_the_window_is_read(
    monkeypatch: pytest.MonkeyPatch, value: str, day: dt.date
) -> None:
    from straits.server.settings import Settings

    monkeypatch.setenv("STRAITS_POLICY_DATE", value)
    assert Settings.from_env().policy_date == day


@pytest.mark.parametrize("value", ["garbage", "inf", "1e400", "0", "-1", "nan"])
def test_a_garbage_witness_timeout_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    assert cli("ledger", "keygen", "-o", str(tmp_path / "k"))[0] == 0
    monkeypatch.setenv("STRAITS_WITNESS_TIMEOUT", value)
    code, err = cli(
        "ledger",
        "witness",
        "--checkpoint",
        "http://127.0.0.1:9/checkpoint",
        "--pubkey",
        str(tmp_path / "k.pub"),
        "--state",
        str(tmp_path / "w.json"),
    )
    assert code == 2 and "STRAITS_WITNESS_TIMEOUT" in err


@pytest.mark.parametrize(
    ("server", "token"),
    [
        ("http://a\nb", None),
        ("http://" + "a" * 100_000, None),
        ("ftp://host", None),
        ("http://127.0.0.1:9", "tök"),
        ("http://127.0.0.1:9", "a\nb"),
    ],
)
def test_a_server_url_or_token_httpx_cannot_send_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, server: str, token: str | None
) -> None:
    monkeypatch.setenv("STRAITS_SERVER", server)
    if token is not None:
        monkeypatch.setenv("STRAITS_TOKEN", token)
    code, _ = cli("check", stdin=REQUEST)
    assert code == 2


# --- rule packs -----------------------------------------------------------------------------------
def _pack_with(tmp: Path, name: str, make: str) -> Path:
    import shutil

    root = tmp / "packs"
    shutil.copytree(PACK, root)
    target = root / "us-ear" / name
    target.unlink(missing_ok=True)
    if make == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    return root


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("x.cedar", "fifo"),
        ("z.cedar", "zero"),
        ("groups.yaml", "fifo"),
        ("groups.yaml", "zero"),
        ("cases/f.yaml", "fifo"),
    ],
)
@pytest.mark.parametrize("command", ["check", "test", "diff"])
def test_a_pack_file_that_is_a_fifo_or_a_device_is_exit_2(
    tmp_path: Path, name: str, make: str, command: str
) -> None:
    """A FIFO blocked every command that loaded the pack, forever; /dev/zero was read until
    memory ran out."""
    packs = _pack_with(tmp_path, name, make)
    argv = {
        "check": ("check", "--rules", str(packs)),
        "test": ("rules", "test", "--rules", str(packs)),
        "diff": ("rules", "diff", "--packs", str(packs)),
    }[command]
    code, err = cli(*argv, stdin=REQUEST)
    assert code == 2 and name.split("/")[-1] in err


@pytest.mark.parametrize("option", ["--key", "--pubkey"])
def test_a_key_file_that_is_a_fifo_nothing_writes_is_exit_2_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    """`--key FIFO` (or STRAITS_LEDGER_KEY naming one, at `straits serve`) blocked in open()
    forever when nothing wrote to it; now it waits PIPE_WAIT_S for a key to arrive."""
    from straits.store import keys

    monkeypatch.setattr(keys, "PIPE_WAIT_S", 0.5)
    fifo = tmp_path / "key"
    os.mkfifo(fifo)
    load = keys.load_signer if option == "--key" else keys.load_verifier
    with pytest.raises(InputError) as caught:
        load(str(fifo), option)
    assert caught.value.path == option and "nothing arrived" in str(caught.value)


def test_a_key_given_through_a_pipe_is_read(tmp_path: Path) -> None:
    """A key handed over a pipe (`--key <(vault read ...)`, never on disk) still works."""
    import threading

    from straits.store.keys import load_signer

    signer = Signer.generate("straits.test/pipe")
    fifo = tmp_path / "key"
    os.mkfifo(fifo)

    def write() -> None:
        with fifo.open("w") as f:
            f.write(signer.skey + "\n")

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert load_signer(fifo).verifier == signer.verifier
    writer.join(10)


@pytest.mark.parametrize("given", ["flag", "environment"])
def test_a_bad_database_url_names_where_it_was_given(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """`--db nosuch://x` was reported as STRAITS_DATABASE_URL, a variable the user never set
    (click says whether the value came from the command line or the environment)."""
    args = ["ledger", "show"]
    if given == "flag":
        monkeypatch.delenv("STRAITS_DATABASE_URL", raising=False)
        args += ["--db", "nosuch://x"]
    else:
        monkeypatch.setenv("STRAITS_DATABASE_URL", "nosuch://x")
    code, err = cli(*args)
    assert code == 2
    assert err.startswith("error: --db:" if given == "flag" else "error: STRAITS_DATABASE_URL:")


# --- a private key where a public one is expected ------------------------------------------------
@pytest.mark.parametrize("given", ["file", "text", "environment"])
def test_a_private_key_given_as_the_public_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """`--pubkey` (and STRAITS_LEDGER_PUBKEY) took the log's signing key without a word and
    used its public half: the private key went where auditors, tenants and witnesses keep
    public keys (atk32). It is exit 2 naming where it came from; the .pub beside it works."""
    from straits.store import Store, ledger

    db = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(db)
    ledger.record(store, tenant="a", actor="t", kind="check", body={})
    store.close()
    key = tmp_path / "k"
    assert cli("ledger", "keygen", "-o", str(key))[0] == 0
    assert cli("ledger", "checkpoint", "--db", db, "--key", str(key))[0] == 0
    spec = {"file": str(key), "text": key.read_text().strip(), "environment": str(key)}[given]
    args: tuple[str, ...] = ()
    if given == "environment":
        monkeypatch.setenv("STRAITS_LEDGER_PUBKEY", spec)
        option = "STRAITS_LEDGER_PUBKEY"
    else:
        option, args = "--pubkey", ("--pubkey", spec)
    code, err = cli("ledger", "verify", "--db", db, *args)
    assert code == 2 and option in err and "PRIVATE" in err, err
    assert "PRIVATE+KEY" not in err  # the key is not echoed back
    if given == "environment":
        monkeypatch.setenv("STRAITS_LEDGER_PUBKEY", f"{key}.pub")
    pub: tuple[str, ...] = () if given == "environment" else ("--pubkey", f"{key}.pub")
    assert cli("ledger", "verify", "--db", db, *pub)[0] == 0


@pytest.mark.parametrize("given", ["STRAITS_SERVER", "--server"])
def test_a_server_url_without_a_scheme_names_where_it_was_given(
    monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """`STRAITS_SERVER=localhost:8000` was refused naming `--server`, a flag never typed
    (user64; as user32 found for STRAITS_LEDGER_KEY named `--key`); a typed `--server` stays
    `--server`."""
    if given == "STRAITS_SERVER":
        monkeypatch.setenv("STRAITS_SERVER", "localhost:8000")
        code, err = cli("chips")
    else:
        code, err = cli("--server", "localhost:8000", "chips")
    assert code == 2 and given in err
    assert ("STRAITS_SERVER" in err) == (given == "STRAITS_SERVER")


@pytest.mark.parametrize("value", ["2025-02-30", "2025-02-29", "2025-13-01", "0000-01-01"])
def test_a_policy_date_the_calendar_lacks_is_named_so(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """STRAITS_POLICY_DATE=2025-02-29 (no leap year) was "not a date Straits plans for",
    as if the window or the form were wrong, where the CLI's --date now names a day the
    calendar lacks (bbdfa99); 2024-02-29 is read (rev64c)."""
    from straits.server.settings import Settings

    monkeypatch.setenv("STRAITS_POLICY_DATE", value)
    with pytest.raises(InputError) as caught:
        Settings.from_env()
    assert caught.value.path == "STRAITS_POLICY_DATE"
    assert "calendar" in caught.value.detail and "plans for" not in caught.value.detail
    monkeypatch.setenv("STRAITS_POLICY_DATE", "2024-02-29")
    assert Settings.from_env().policy_date == dt.date(2024, 2, 29)
