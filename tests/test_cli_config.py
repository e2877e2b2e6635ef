"""The CLI's configuration (docs/cli.md): the default database in the XDG data directory,
straits.toml's defaults under the flags, a bad config file or database URL blamed on where it
came from, an explicit --config that must exist, a readable token in the config warned about.
Through the real `straits` process. Split from test_cli_conventions.py, whose runner it uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from test_cli import one_line_error
from test_cli_conventions import run
from test_rules_engine import DESIGN_REQUEST


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An empty XDG config and data home for one test."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}


# --- config and the XDG directories --------------------------------------------------------------
def test_default_database_is_in_the_xdg_data_dir_and_named(
    home: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    p = run("check", "--record", stdin=json.dumps(DESIGN_REQUEST), env=home, cwd=work)
    assert p.returncode == 0, p.stderr
    db = Path(home["XDG_DATA_HOME"]) / "straits" / "straits.db"
    assert db.is_file() and str(db) in p.stderr
    assert not list(work.iterdir())  # nothing in the directory the command ran in
    again = run("check", "--record", stdin=json.dumps(DESIGN_REQUEST), env=home, cwd=work)
    assert "creating the database" not in again.stderr
    show = json.loads(run("config", "show", "--json", env=home).stdout)
    assert show["settings"]["database"] == {"value": f"sqlite:///{db}", "from": "default"}
    # the actor that would be recorded, not a blank (docs/cli.md: default cli:$USER)
    assert show["settings"]["actor"]["from"] == "default"
    assert show["settings"]["actor"]["value"].startswith("cli:")


def test_straits_toml_sets_defaults_and_flags_win(home: dict[str, str], tmp_path: Path) -> None:
    cfg = Path(home["XDG_CONFIG_HOME"]) / "straits" / "straits.toml"
    cfg.parent.mkdir(parents=True)
    db = tmp_path / "from-config.db"
    cfg.write_text(f'database = "sqlite:///{db}"\nactor = "alice@example"\n')
    p = run("check", "--record", "--json", stdin=json.dumps(DESIGN_REQUEST), env=home)
    assert p.returncode == 0, p.stderr
    shown = json.loads(run("ledger", "show", "--json", env=home).stdout)
    assert [e["actor"] for e in shown] == ["alice@example"]
    assert db.is_file()
    flag_db = tmp_path / "flag.db"
    run(
        "check",
        "--record",
        "--actor",
        "bob",
        "--db",
        f"sqlite:///{flag_db}",
        stdin=json.dumps(DESIGN_REQUEST),
        env=home,
    )
    assert (
        json.loads(
            run("ledger", "show", "--json", "--db", f"sqlite:///{flag_db}", env=home).stdout
        )[0]["actor"]
        == "bob"
    )
    env_db = tmp_path / "env.db"
    s = json.loads(
        run(
            "config",
            "show",
            "-o",
            "json",
            env={**home, "STRAITS_DATABASE_URL": f"sqlite:///{env_db}"},
        ).stdout
    )
    assert s["settings"]["database"]["from"] == "environment (STRAITS_DATABASE_URL)"
    assert s["settings"]["actor"] == {"value": "alice@example", "from": str(cfg)}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('databse = "sqlite://"\n', ("databse", "unknown key", "database")),
        ("database = 5\n", ("database", "non-empty string")),
        ('rules = "packs"\n', ("rules", "list of paths")),
        ('database = "x\n', ("not valid TOML", "line 1")),
        (b"\xff\xfe", ("UTF-8",)),
    ],
)
def test_a_bad_config_file_exits_2_naming_it(
    home: dict[str, str], tmp_path: Path, content: Any, words: tuple[str, ...]
) -> None:
    cfg = tmp_path / "bad.toml"
    if isinstance(content, bytes):
        cfg.write_bytes(content)
    else:
        cfg.write_text(content)
    one_line_error(run("--config", str(cfg), "config", "show", env=home), str(cfg), *words)
    one_line_error(run("chips", "--json", env={**home, "STRAITS_CONFIG": str(cfg)}), str(cfg))


def test_a_bad_database_url_is_blamed_on_where_it_came_from(
    home: dict[str, str], tmp_path: Path
) -> None:
    cfg = tmp_path / "straits.toml"
    cfg.write_text('database = "nonsense://x"\n')
    one_line_error(
        run("--config", str(cfg), "ledger", "verify", env=home), f"{cfg}: database:", "nonsense://x"
    )
    env = {**home, "STRAITS_DATABASE_URL": "nonsense://y"}  # the variable wins, and is named
    one_line_error(
        run("--config", str(cfg), "ledger", "verify", env=env),
        "STRAITS_DATABASE_URL:",
        "nonsense://y",
    )


def test_a_missing_rules_folder_of_the_config_is_blamed_on_the_config(
    home: dict[str, str], tmp_path: Path
) -> None:
    """user32: `rules = ["packs"]` in straits.toml naming a folder that is not there was
    `error: /home/u/.config/straits/packs: rules directory not found`, naming neither the config
    file nor its key, so a user who never typed that path did not know where it came from."""
    cfg = tmp_path / "straits.toml"
    cfg.write_text('rules = ["packs"]\n')
    p = run("--config", str(cfg), "check", stdin=json.dumps(DESIGN_REQUEST), env=home)
    one_line_error(p, f"{cfg}: rules[0]:", str(tmp_path / "packs"))
    (tmp_path / "packs").mkdir()  # there, but empty: the loader names the folder itself
    p = run("--config", str(cfg), "check", stdin=json.dumps(DESIGN_REQUEST), env=home)
    one_line_error(p, str(tmp_path / "packs"))


def test_an_explicit_config_must_exist(home: dict[str, str], tmp_path: Path) -> None:
    one_line_error(
        run("--config", str(tmp_path / "nope.toml"), "config", "show", env=home),
        "nope.toml",
        "not found",
    )


def test_a_readable_token_in_the_config_is_warned_about(
    home: dict[str, str], tmp_path: Path
) -> None:
    cfg = tmp_path / "straits.toml"
    cfg.write_text('token = "st_x_y"\n')
    cfg.chmod(0o644)
    p = run("--config", str(cfg), "config", "show", "--json", env=home)
    assert p.returncode == 0 and "chmod 600" in p.stderr
    assert json.loads(p.stdout)["settings"]["token"]["value"] == "(set)"
    assert "st_x_y" not in p.stdout


def test_config_show_says_whether_the_flag_or_the_variable_gave_the_server(
    home: dict[str, str],
) -> None:
    """`config show` said "--server or STRAITS_SERVER" (and "--token or STRAITS_TOKEN") for
    either, where it names the one variable that gave the actor (user64)."""
    env = {**home, "STRAITS_SERVER": "http://env:1", "STRAITS_TOKEN": "st_a_b"}
    got = json.loads(run("config", "show", "--json", env=env).stdout)["settings"]
    assert got["server"]["from"] == "environment (STRAITS_SERVER)"
    assert got["token"]["from"] == "environment (STRAITS_TOKEN)"
    p = run("--server", "http://flag:1", "--token", "st_c_d", "config", "show", "--json", env=env)
    got = json.loads(p.stdout)["settings"]
    assert (got["server"]["from"], got["token"]["from"]) == ("--server", "--token")


@pytest.mark.parametrize("where", ["env", "flag", "file"])
def test_a_password_in_the_server_url_is_never_echoed(
    home: dict[str, str], tmp_path: Path, where: str
) -> None:
    """`https://user:PASSWORD@host` (httpx sends it as Basic auth) was printed whole by
    `config show`, by the error of a bad URL and by every error naming the server, as the
    database's password and the token are not (rev64c)."""
    from straits.client import Client
    from straits.errors import RemoteError

    url = "http://alice:s3cret@127.0.0.1:1"
    env, flags = dict(home), []
    if where == "env":
        env["STRAITS_SERVER"] = url
    elif where == "flag":
        flags = ["--server", url]
    else:
        cfg = tmp_path / "straits.toml"
        cfg.write_text(f'server = "{url}"\n')
        env["STRAITS_CONFIG"] = str(cfg)
    p = run(*flags, "config", "show", "--json", env=env)
    got = json.loads(p.stdout)["settings"]["server"]
    assert got["value"] == "http://alice:***@127.0.0.1:1" and "s3cret" not in p.stdout
    bad = {**home, "STRAITS_SERVER": url + "x"}  # no port httpx can read
    p = run("rules", "list", env=bad)
    assert p.returncode == 2 and "alice:***@" in p.stderr and "s3cret" not in p.stderr
    with Client(url) as c, pytest.raises(RemoteError) as exc:
        list(c.plans())
    assert "s3cret" not in str(exc.value) and c.base_url == "http://alice:***@127.0.0.1:1"
