"""Universes: built-ins, and `Universe.load` of CSV and TOML files with one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from tickwire.simulators import Universe
from tickwire.simulators.errors import UserError
from tickwire.simulators.ticks import MAX_SYMBOLS

GOOD_CSV = """\
symbol,name,sector,price,tick_size,lot_size,activity,kind
AAPL,Apple,Technology,189.5,0.01,100,2.0,stock
"BRK.B","Berkshire Hathaway, Class B",Financials,412.8,0.01,10,0.5,stock

# a comment, then a line with only the required columns filled in
ZZZ,,,5,,,,
SPY,SPDR S&P 500 ETF,ETF,528.4,0.01,100,3,ETF
"""

GOOD_TOML = """\
# a universe of three symbols
[[symbol]]
symbol = "AAPL"
name = "Apple"
sector = "Technology"
price = 189.5
tick_size = 0.01
lot_size = 100
activity = 2.0

[[symbol]]
symbol = "ZZZ"
price = 5

[[symbol]]
symbol = "SPY"
price = 528.4
kind = "etf"
"""


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path) -> str:
    with pytest.raises(UserError) as info:
        Universe.load(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_builtins_still_work():
    default = Universe.default()
    assert "AAPL" in default and len(default.sector_names) >= 10
    assert default.reference()[0]["simulated"] is True
    synthetic = Universe.synthetic(300, seed=1)
    assert len(synthetic) == 300 and synthetic.index(synthetic.symbols[7]) == 7
    assert np.array_equal(synthetic.price, Universe.synthetic(300, seed=1).price)


def test_load_csv_with_defaults(tmp_path):
    u = Universe.load(_write(tmp_path, "mine.csv", GOOD_CSV))
    assert u.symbols == ("AAPL", "BRK.B", "ZZZ", "SPY")
    assert u.names[1] == "Berkshire Hathaway, Class B"
    assert u.price.tolist() == [189.5, 412.8, 5.0, 528.4]
    assert u.lot_size.tolist() == [100, 10, 100, 100]
    # an empty cell takes the default: name = symbol, sector Other, 0.01, 100, 1.0, stock
    z = u.reference()[2]
    assert (z["name"], z["sector"], z["tick_size"], z["activity"], z["kind"]) == (
        "ZZZ",
        "Other",
        0.01,
        1.0,
        "stock",
    )
    assert u.kinds[3] == "etf"  # case-insensitive


def test_load_csv_minimal_columns_and_bom(tmp_path):
    path = tmp_path / "min.CSV"
    path.write_bytes("\ufeffSymbol, Price\nA,1\nB,2.5\n".encode())
    u = Universe.load(path)
    assert u.symbols == ("A", "B") and u.sectors == ("Other", "Other")
    assert u.tick_size.tolist() == [0.01, 0.01] and u.activity.tolist() == [1.0, 1.0]


def test_load_toml(tmp_path):
    u = Universe.load(_write(tmp_path, "mine.toml", GOOD_TOML))
    assert u.symbols == ("AAPL", "ZZZ", "SPY")
    assert u.activity.tolist() == [2.0, 1.0, 1.0]
    assert u.kinds == ("stock", "stock", "etf") and u.names[1] == "ZZZ"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("X,abc", "line 3, field price: must be a number > 0, got 'abc'"),
        ("X,-1", "line 3, field price: must be a number > 0, got '-1'"),
        ("X,nan", "line 3, field price: must be a number > 0"),
        ("X,10,0", "line 3, field tick_size: must be a number > 0, got '0'"),
        ("X,0.001,0.01", "line 3, field price: must be at least one tick (0.01)"),
        ("X,10,0.01,12.5", "line 3, field lot_size: must be a whole number from 1"),
        ("X,10,0.01,100,zero", "line 3, field activity: must be a number > 0, got 'zero'"),
        (
            "X,10,0.01,100,1,bond",
            "line 3, field kind: must be one of stock, etf, crypto, got 'bond'",
        ),
        (
            "X,10,0.01,0.5,1,stock",
            "line 3, field lot_size: must be a whole number from 1 to 1000000 for a stock "
            "(fractional lots are for kind crypto), got '0.5'",
        ),
        ("X,10,0.01,0,1,crypto", "line 3, field lot_size: must be a number > 0, got '0'"),
        ("X,10,0.00000000001,1,1,crypto", "line 3, field tick_size: must have at most 9 decimal"),
        ("X,10,0.01,1e-12,1,crypto", "line 3, field lot_size: must have at most 9 decimal"),
        (",10", "line 3, field symbol: missing"),
        ("X", "line 3, field price: missing"),
        ("A B,10", "line 3, field symbol: must be 1 to 32 characters without spaces"),
        ("*,10", "line 3, field symbol: must be 1 to 32 characters"),
        ("A" * 33 + ",10", "line 3, field symbol: must be 1 to 32"),
        ("A,10", "line 3, field symbol: 'A' is already on line 2; symbols must be unique"),
        ("X,10,0.01,100,1,stock,extra", "line 3: 7 fields but the header (line 1) names 6"),
    ],
)
def test_csv_errors_name_file_line_and_field(tmp_path, line, expected):
    text = f"symbol,price,tick_size,lot_size,activity,kind\nA,1\n{line}\n"
    message = _error(_write(tmp_path, "universe.csv", text))
    assert message.startswith(str(tmp_path / "universe.csv"))
    assert f"universe.csv {expected}" in message


def test_csv_header_errors(tmp_path):
    assert "line 2: unknown column 'prise'" in _error(
        _write(tmp_path, "u.csv", "# comment\nsymbol,prise\nA,1\n")
    )
    assert "has no 'price' column" in _error(_write(tmp_path, "u.csv", "symbol,name\nA,a\n"))
    assert "column 'price' appears twice" in _error(
        _write(tmp_path, "u.csv", "symbol,price,price\nA,1,1\n")
    )


def test_file_level_errors(tmp_path):
    assert "universe file" in _error(tmp_path / "missing.csv")
    assert "not found" in _error(tmp_path / "missing.csv")
    assert "unknown universe file type '.json'; use .csv or .toml" in _error(
        _write(tmp_path, "u.json", "{}")
    )
    assert "is empty; expected a header line symbol,name" in _error(
        _write(tmp_path, "u.csv", "\n\n")
    )
    assert "has a header but no symbols" in _error(_write(tmp_path, "u.csv", "symbol,price\n"))
    assert "is empty; expected one [[symbol]] table" in _error(_write(tmp_path, "u.toml", ""))
    (tmp_path / "bin.csv").write_bytes(b"symbol,price\n\xff\xfe,1\n")
    assert "not UTF-8 text" in _error(tmp_path / "bin.csv")


def test_too_many_symbols(tmp_path):
    rows = "\n".join(f"S{i},1" for i in range(MAX_SYMBOLS + 1))
    message = _error(_write(tmp_path, "big.csv", f"symbol,price\n{rows}\n"))
    assert f"has {MAX_SYMBOLS + 1} symbols; a universe holds at most {MAX_SYMBOLS}" in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            'symbol = "X"\nprice = "abc"',
            "entry 2 (X), field price: must be a number > 0, got 'abc'",
        ),
        ('symbol = "X"\nprice = true', "entry 2 (X), field price: must be a number > 0, got True"),
        ('symbol = "X"\nprice = 1\nlot_size = 0', "entry 2 (X), field lot_size: must be a whole"),
        ('symbol = "X"\nprice = 1\nkind = "fund"', "entry 2 (X), field kind: must be one of"),
        ('symbol = "X"\nprice = 1\nname = 5', "entry 2 (X), field name: must be text"),
        ('symbol = "X"\nprice = 1\nprize = 1', "entry 2 (X): unknown field 'prize'; fields are"),
        ("price = 1", "entry 2, field symbol: missing"),
        ("symbol = 7\nprice = 1", "entry 2, field symbol: must be 1 to 32 characters"),
        ('symbol = "A"\nprice = 1', "entry 2 (A), field symbol: 'A' is already on entry 1"),
    ],
)
def test_toml_errors_name_entry_symbol_and_field(tmp_path, entry, expected):
    text = f'[[symbol]]\nsymbol = "A"\nprice = 1\n\n[[symbol]]\n{entry}\n'
    message = _error(_write(tmp_path, "universe.toml", text))
    assert "universe.toml [[symbol]] " in message
    assert expected in message


def test_toml_document_errors(tmp_path):
    syntax = _error(_write(tmp_path, "u.toml", '[[symbol]]\nsymbol = "A"\nprice = \n'))
    assert "u.toml: not valid TOML" in syntax and "line 3" in syntax
    assert "unknown top-level key 'symbols'" in _error(
        _write(tmp_path, "u.toml", '[[symbols]]\nsymbol = "A"\nprice = 1\n')
    )
    assert "written [[symbol]]" in _error(_write(tmp_path, "u.toml", 'symbol = "A"\n'))


def test_reference_written_as_csv_loads_back(tmp_path):
    import csv

    from tickwire.simulators.universe import FIELDS

    original = Universe.default()
    path = tmp_path / "default.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        w.writerows([r[k] for k in FIELDS] for r in original.reference())
    assert Universe.load(path).reference() == original.reference()


def test_crypto_rows_keep_fractional_lots_exact(tmp_path):
    text = (
        "symbol,price,tick_size,lot_size,activity,kind,base,quote\n"
        "BTC-USD,95000,0.01,0.00001,3,crypto,,\n"
        "ETH-BTC,0.0368,0.00001,0.0001,1,crypto,ETH,BTC\n"
        "AAPL,189.5,0.01,100,2,stock,,\n"
    )
    u = Universe.load(_write(tmp_path, "c.csv", text))
    assert u.kinds == ("crypto", "crypto", "stock")
    assert u.lot_size.tolist() == [0.00001, 0.0001, 100]
    assert u.size_unit is not None and u.size_unit.tolist() == [0.00001, 0.0001, 1.0]
    assert u.lot_units.tolist() == [1, 1, 100]  # sizes are integer counts of size_unit
    assert (u.bases, u.quotes) == (("BTC", "ETH", "AAPL"), ("USD", "BTC", "USD"))
    refs = u.reference()
    assert (refs[0]["lot_size"], refs[2]["lot_size"]) == (0.00001, 100)
    back = Universe.from_reference(refs)
    assert back.kinds == u.kinds and back.lot_size.tolist() == u.lot_size.tolist()
    assert back.bases == u.bases and back.quotes == u.quotes


def test_builtin_crypto_universe():
    u = Universe.builtin("crypto")
    assert {"BTC-USD", "ETH-USD", "SOL-USD"} <= set(u.symbols)
    btc = u.index("BTC-USD")
    assert (u.tick_size[btc], u.lot_size[btc], u.bases[btc]) == (0.01, 0.00001, "BTC")
    assert set(u.kinds) == {"crypto"} and np.all(u.price / u.tick_size >= 1000)
    assert Universe.builtin("default").symbols == Universe.default().symbols
    with pytest.raises(UserError, match="unknown built-in universe 'bonds'; built-ins are"):
        Universe.builtin("bonds")


@pytest.mark.parametrize(
    ("kind", "tick", "lot", "expected"),
    [
        ("stock", 0.01, 0.5, "X: lot_size must be a whole number for a stock"),
        ("etf", 0.0, 100, "X: tick_size must be a number > 0, got 0"),
        ("bond", 0.01, 100, "X: kind must be one of stock, etf, crypto, got 'bond'"),
        ("crypto", 0.01, 0.0, "X: lot_size must be a number > 0, got 0"),
    ],
)
def test_universes_built_in_code_get_the_same_checks(kind, tick, lot, expected):
    with pytest.raises(ValueError, match=expected):
        Universe.from_rows([("X", "X", "Other", 10.0, tick, lot, 1.0, kind)])
