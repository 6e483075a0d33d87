"""A real restic repository for checking retention against `restic forget`.

restic opens a repository by deriving a key from the password with scrypt, tuned when the
repository is created to take about half a second; every restic command pays it again. The
repository's master key is stored encrypted in a key file, so after `restic init` we wrap the
same master key again under cheap scrypt parameters (the key file format of restic's design
document: scrypt -> AES-256-CTR + Poly1305-AES). restic still does all its own work on the
same data; `restic forget` then answers in about 20 ms instead of 0.5-1.5 s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305

PASSWORD = "retention-tests"
CHEAP_SCRYPT = {"N": 1024, "r": 8, "p": 1}


class ResticRepo:
    """A repository in DIRECTORY holding backups of one tiny file, all from host 'h'."""

    def __init__(self, directory: Path) -> None:
        assert shutil.which("restic"), "restic is not installed: run scripts/install-deps"
        self.directory = directory
        self.env = {**os.environ, "RESTIC_REPOSITORY": str(directory / "repo"),
                    "RESTIC_PASSWORD": PASSWORD, "TZ": "UTC"}  # fmt: skip
        (directory / "data").mkdir()
        (directory / "data" / "dump").write_text("one small file\n")
        self._restic("init")
        _rewrap_key(directory / "repo" / "keys", PASSWORD.encode())

    def backup(self, time: datetime, tags: list[str], repository: Path | None = None) -> None:
        """One backup whose snapshot time is TIME (UTC), tagged TAGS (into REPOSITORY if given).

        Run one at a time per repository: restic 0.14 backs off for about 40 s when a lock file
        it listed is gone before it reads it, which concurrent backups make likely.
        """
        self._restic("backup", "--quiet", "--host", "h", "--time", f"{time:%Y-%m-%d %H:%M:%S}",
                     "--tag", ",".join(tags), "data", repository=repository)  # fmt: skip

    def backup_all(self, history: list[tuple[datetime, list[str]]], copies: int = 6) -> None:
        """One backup per (time, tags) of HISTORY, made in COPIES copies of the repository at once.

        Every restic command that locks waits 200 ms before it looks for other locks, and
        backups into one repository must run one at a time (see `backup`): 60 backups took
        15 s. A copy of the freshly initialised repository has its config and its master key,
        so the snapshots, indexes and packs restic writes there are valid here too; their file
        names are content hashes, so moving them in never collides.
        """
        originals = self.directory / "repo"
        shares = [history[start::copies] for start in range(copies)]
        with ThreadPoolExecutor(copies) as pool:
            list(pool.map(self._backup_in_copy, range(copies), shares))
        for number in range(copies):
            copy = self.directory / f"copy{number}"
            for kind in ("snapshots", "index", "data"):
                for path in (copy / kind).rglob("*"):
                    if path.is_file():
                        target = originals / path.relative_to(copy)
                        target.parent.mkdir(exist_ok=True)
                        path.rename(target)
            shutil.rmtree(copy)

    def _backup_in_copy(self, number: int, history: list[tuple[datetime, list[str]]]) -> None:
        copy = self.directory / f"copy{number}"
        shutil.copytree(self.directory / "repo", copy)
        for time, tags in history:
            self.backup(time, tags, repository=copy)

    def forget_dry_run(self, flags: list[str]) -> list[dict]:
        """`restic forget --dry-run --json FLAGS`: one entry per snapshot group."""
        output = self._restic("forget", "--dry-run", "--json", "--no-lock", *flags)
        return json.loads(output)

    def _restic(self, *arguments: str, repository: Path | None = None) -> str:
        env = self.env if repository is None else {**self.env, "RESTIC_REPOSITORY": str(repository)}
        done = subprocess.run(
            ["restic", "--no-cache", *arguments],
            env=env,
            cwd=self.directory,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"restic {' '.join(arguments)}: {done.stderr}"
        return done.stdout


def _rewrap_key(keys: Path, password: bytes) -> None:
    """Replace the only key file in KEYS by one holding the same master key, cheap to open."""
    [key_file] = keys.iterdir()
    key = json.loads(key_file.read_text())
    master = _open_box(_derive(key, password), base64.b64decode(key["data"]))
    cheap = {**key, **CHEAP_SCRYPT, "salt": base64.b64encode(os.urandom(64)).decode()}
    cheap["data"] = base64.b64encode(_seal_box(_derive(cheap, password), master)).decode()
    text = json.dumps(cheap).encode()
    (keys / hashlib.sha256(text).hexdigest()).write_bytes(text)
    key_file.unlink()


def _derive(key: dict, password: bytes) -> bytes:
    """64 bytes: the AES-256 key, then the Poly1305-AES key (k, r)."""
    salt = base64.b64decode(key["salt"])
    return hashlib.scrypt(password, salt=salt, n=key["N"], r=key["r"], p=key["p"],
                          maxmem=2**28, dklen=64)  # fmt: skip


def _mac_key(derived: bytes, iv: bytes) -> bytes:
    """Poly1305-AES: r from the key, s = AES_k(nonce)."""
    encryptor = Cipher(algorithms.AES(derived[32:48]), modes.ECB()).encryptor()  # noqa: S305
    return derived[48:64] + encryptor.update(iv) + encryptor.finalize()


def _open_box(derived: bytes, box: bytes) -> bytes:
    """Check and decrypt IV || AES-CTR ciphertext || MAC."""
    iv, ciphertext, tag = box[:16], box[16:-16], box[-16:]
    Poly1305.verify_tag(_mac_key(derived, iv), ciphertext, tag)
    decryptor = Cipher(algorithms.AES(derived[:32]), modes.CTR(iv)).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def _seal_box(derived: bytes, plaintext: bytes) -> bytes:
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(derived[:32]), modes.CTR(iv)).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return iv + ciphertext + Poly1305.generate_tag(_mac_key(derived, iv), ciphertext)
