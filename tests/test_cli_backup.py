"""`lianjian db backup`: a consistent copy of a live database, its link secret kept apart."""

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

from bot.cli import main


def _add_departments(db: Path, start: int, n: int) -> None:
    with closing(sqlite3.connect(db)) as con:
        for i in range(start, start + n):
            con.execute(
                "INSERT INTO department (code, name, short_name, is_market_regulator, counterpart)"
                " VALUES (?, ?, '', 0, '')",
                (f"D{i}", f"部门{i}"),
            )
            con.commit()


def test_backup_of_a_live_database_has_the_rows_still_in_its_wal(tmp_path, capsys):
    """Copying the file while serving lost what sat in the -wal file: the backup holds every
    row committed before it, while another connection keeps writing."""
    db = tmp_path / "lianjian.sqlite3"
    assert main(["db", "upgrade", "--db", str(db)]) == 0
    holder = sqlite3.connect(db)  # an open reader keeps the WAL from being checkpointed away
    holder.execute("PRAGMA wal_autocheckpoint=0")
    holder.execute("SELECT count(*) FROM department").fetchone()
    _add_departments(db, 0, 200)
    assert Path(f"{db}-wal").stat().st_size > 0
    writer = threading.Thread(target=_add_departments, args=(db, 1000, 200))
    writer.start()
    (tmp_path / ".lianjian-secret").write_text("e" * 64)  # as serve generates it
    out = tmp_path / "backup" / "copy.sqlite3"
    out.parent.mkdir()
    try:
        assert main(["db", "backup", str(out), "--db", str(db)]) == 0
    finally:
        writer.join()
        holder.close()
    printed = capsys.readouterr().out
    assert str(out) in printed and ".lianjian-secret" in printed
    assert not (out.parent / ".lianjian-secret").exists()  # a credential: not spread by copies
    with closing(sqlite3.connect(f"file:{out}?mode=ro", uri=True)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        codes = {code for (code,) in copy.execute("SELECT code FROM department")}
    assert {f"D{i}" for i in range(200)} <= codes
    assert not Path(f"{out}-wal").exists()  # one file to carry away
    # the copy is a database the CLI opens
    assert main(["department", "list", "--db", str(out)]) == 0
    assert "部门199" in capsys.readouterr().out


def test_backup_never_overwrites_and_names_pg_dump_for_postgresql(tmp_path, capsys):
    db = tmp_path / "lianjian.sqlite3"
    assert main(["db", "upgrade", "--db", str(db)]) == 0
    out = tmp_path / "old.sqlite3"
    out.write_bytes(b"yesterday's backup")
    assert main(["db", "backup", str(out), "--db", str(db)]) == 2
    assert "已存在" in capsys.readouterr().err
    assert out.read_bytes() == b"yesterday's backup"

    url = "postgresql://lj:s3cret-pw@db.example:5433/lianjian"
    assert main(["db", "backup", str(tmp_path / "pg.dump"), "--db", url]) == 2
    err = capsys.readouterr().err
    assert "pg_dump" in err and "s3cret-pw" not in err
    assert "-h db.example -p 5433 -U lj" in err and "lianjian" in err
    assert not (tmp_path / "pg.dump").exists()
