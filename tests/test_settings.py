"""`Settings` and the files that must list every setting (commented out, so copying changes nothing)."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest

from izzati.assembly import default_job_dir
from izzati.exceptions import ConfigError
from izzati.settings import Settings
from izzati.settingshelp import env_example, variables

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_lists_every_setting_with_its_default() -> None:
    text = (ROOT / ".env.example").read_text()
    assert text == env_example(), "regenerate .env.example (command at its top)"
    lines = text.splitlines()
    for name, default, description in variables():
        assert f"# {name}={default}" in lines, name
        assert f"# {description}" in lines, name


def test_environment_and_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text('IZZATI_PORT=6001\nIZZATI_CALLBACK_ARGS=[1, "a"]\nIZZATI_QUEUE_NAME=fromfile\n')
    monkeypatch.setenv("IZZATI_QUEUE_NAME", "fromenv")
    settings = Settings()
    assert settings.port == 6001
    assert settings.callback_args == [1, "a"]
    assert settings.queue_name == "fromenv"  # the environment wins over .env
    assert settings.queue_url == "memory://"


def test_empty_optional_settings_mean_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IZZATI_CALLBACK_TIMEOUT", "")
    monkeypatch.setenv("IZZATI_API_KEY", " ")
    settings = Settings()
    assert settings.callback_timeout is None and settings.api_key is None


def test_default_job_dir_is_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = default_job_dir()
    assert path.parent == tmp_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    path.chmod(0o777)  # as if someone else had prepared it for everyone
    with pytest.raises(ConfigError, match="not a private folder"):
        default_job_dir()


def test_an_s3_job_store_needs_a_redis_queue_and_an_s3_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from izzati.assembly import build_jobs, load_settings

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"IZZATI_JOB_STORE='s3://b/jobs' .*needs IZZATI_QUEUE_URL=redis://"):
        build_jobs(load_settings(job_store="s3://b/jobs"))  # memory:// keeps no records in Redis
    with pytest.raises(ConfigError, match=r"IZZATI_JOB_STORE='http://b/jobs': expected s3://bucket/prefix"):
        build_jobs(load_settings(job_store="http://b/jobs", queue_url="redis://127.0.0.1:1/0"))
