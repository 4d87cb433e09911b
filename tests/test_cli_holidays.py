"""`lianjian holidays load`: a holiday file that says nothing (misspelled keys, no holiday) is
refused, not loaded as “0 天” clearing the missing-holidays warning."""

from pathlib import Path

import pytest

from bot.cli import main


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "lianjian.sqlite3"
    assert main(["db", "upgrade", "--db", str(path)]) == 0
    return path


def _load(db: Path, tmp_path: Path, text: str, *flags: str) -> int:
    file = tmp_path / "2027.toml"
    file.write_text(text, "utf-8")
    return main(["holidays", "load", str(file), "--db", str(db), *flags])


def test_misspelled_keys_are_refused_with_the_nearest_known_key(db, tmp_path, capsys):
    text = 'year = 2027\nholiday = ["2027-01-01"]\nworkday = ["2027-02-14"]\n'
    assert _load(db, tmp_path, text) == 2
    out, err = capsys.readouterr()
    assert "已载入" not in out
    assert "“holiday”" in err and "“holidays”" in err, err


def test_a_year_without_holidays_is_refused_unless_the_operator_says_so(db, tmp_path, capsys):
    text = 'year = 2027\nholidays = []\nworkdays = ["2027-02-14"]\n'
    assert _load(db, tmp_path, text) == 2
    err = capsys.readouterr().err
    assert "没有放假日期" in err and "--allow-empty" in err, err
    assert _load(db, tmp_path, text, "--allow-empty") == 0
    assert "放假 0 天" in capsys.readouterr().out


def test_a_wrong_shape_is_described_in_words(db, tmp_path, capsys):
    text = 'year = 2027\nholidays = [{name = "元旦", date = "2027-01-01"}]\n'
    assert _load(db, tmp_path, text) == 2
    err = capsys.readouterr().err
    assert "{'" not in err and "放假日期" in err and "2027-01-01..2027-01-03" in err, err
    assert _load(db, tmp_path, 'year = 2027\nholidays = "2027-01-01"\n') == 2
    err = capsys.readouterr().err
    assert "放假日期（holidays）应为" in err, err


def test_template_holidays_writes_an_example_that_loads(db, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["holidays", "load", "-h"])
    helped = capsys.readouterr().out
    assert "holidays =" in helped and "lianjian template holidays" in helped
    example = tmp_path / "节假日.toml"
    assert main(["template", "holidays", "-o", str(example)]) == 0
    assert "lianjian holidays load" in capsys.readouterr().out
    assert main(["holidays", "load", str(example), "--db", str(db)]) == 0
    assert "已载入" in capsys.readouterr().out
