"""What a program can do: output, artifacts, SQL and primitives through the host, allowed imports, errors."""

import pytest

from programs.sandbox import Limits, ProgramOutcome, run_program
from tests.programs.sandbox_fakes import FakeHost

TEXT = {"identifier": "notes", "title": "Notes", "artifact_type": "text", "data": "hello"}
TABLE = {"identifier": "people", "title": "People", "artifact_type": "table", "data": [{"id": 1}, {"id": 2}]}
LIMITS = Limits(wall_clock_s=20)


def run(code: str, host: FakeHost | None = None, artifacts: list[dict] | None = None) -> ProgramOutcome:
    return run_program(code, artifacts=artifacts or [TEXT, TABLE], host=host or FakeHost(), limits=LIMITS)


def test_it_collects_print_and_executor_print_in_order():
    outcome = run("print('a', 1)\nexecutor.print('b', 2, sep='-')\nprint('c', end='')")

    assert outcome.error is None
    assert outcome.output == "a 1\nb-2\nc"


def test_prints_inside_functions_and_printed_work():
    outcome = run("def f(x):\n    print('in f', x)\n    return printed\nout = f(3)\nprint(out.strip())")

    assert outcome.output == "in f 3\nin f 3\n"


def test_get_artifact_returns_data_and_records_access_once():
    outcome = run(
        "print(executor.get_artifact('notes'))\nrows = executor.get_artifact('people')\n"
        "print(rows[1]['id'])\nexecutor.get_artifact('notes')"
    )

    assert outcome.error is None
    assert outcome.output == "hello\n2\n"
    assert outcome.accessed_artifact_ids == ["notes", "people"]


def test_unknown_artifact_is_a_key_error_naming_it():
    outcome = run("x = 1\nexecutor.get_artifact('nope')")

    assert outcome.error.startswith("line 2: KeyError:")
    assert "nope" in outcome.error
    assert "notes" in outcome.error  # lists what is available


def test_store_artifact_text_and_table_later_store_overwrites():
    code = (
        "executor.store_artifact('summary', 'Summary', 'text', 'first')\n"
        "executor.store_artifact('rows', 'Rows', 'table', [{'a': 1, 'when': None}])\n"
        "executor.store_artifact('summary', 'Summary v2', 'text', 'second')\n"
    )
    outcome = run(code)

    assert outcome.error is None
    assert outcome.modified_artifacts == [
        {"identifier": "summary", "title": "Summary v2", "artifact_type": "text", "data": "second"},
        {"identifier": "rows", "title": "Rows", "artifact_type": "table", "data": [{"a": 1, "when": None}]},
    ]


def test_stored_artifact_can_be_read_back_in_the_same_run():
    outcome = run("executor.store_artifact('t', 'T', 'text', 'mine')\nprint(executor.get_artifact('t'))")

    assert outcome.output == "mine\n"


def test_changing_an_input_artifact_reports_it_modified():
    outcome = run(
        "rows = executor.get_artifact('people')\nrows.append({'id': 3})\n"
        "executor.store_artifact('people', 'People', 'table', rows)"
    )

    assert outcome.modified_artifacts[0]["data"] == [{"id": 1}, {"id": 2}, {"id": 3}]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("'x', 'X', 'image', 'data'", "artifact_type must be 'text' or 'table'"),
        ("'x', 'X', 'text', ['not', 'str']", "text artifact needs str data"),
        ("'x', 'X', 'table', 'not rows'", "table artifact needs data as a list of dicts"),
        ("'x', 'X', 'table', [1, 2]", "table artifact needs data as a list of dicts"),
        ("'', 'X', 'text', 'data'", "identifier must be a non-empty string"),
    ],
)
def test_invalid_store_artifact_is_an_error_at_its_line(call, message):
    outcome = run(f"print('before')\nexecutor.store_artifact({call})")

    assert outcome.error.startswith("line 2: ValueError:")
    assert message in outcome.error
    assert outcome.modified_artifacts == []
    assert outcome.output == "before\n"


def test_store_artifact_rejects_data_over_the_size_limit():
    outcome = run_program(
        "executor.store_artifact('big', 'Big', 'text', 'x' * 5000)",
        artifacts=[],
        host=FakeHost(),
        limits=Limits(max_artifact_bytes=1000),
    )

    assert outcome.error is not None
    assert outcome.modified_artifacts == []


def test_run_sql_is_forwarded_to_the_host():
    host = FakeHost()
    outcome = run("rows = executor.run_sql('select * from people')\nprint([r['name'] for r in rows])", host)

    assert outcome.error is None
    assert host.sql == ["select * from people"]
    assert outcome.output == "['Ada', 'Grace']\n"


def test_host_sql_error_reaches_the_program_as_an_exception():
    code = (
        "try:\n    executor.run_sql('select * from missing_table')\nexcept RuntimeError as e:\n    print('caught', e)"
    )
    outcome = run(code)

    assert outcome.error is None
    assert outcome.output == 'caught relation "missing_table" does not exist\n'


def test_uncaught_host_sql_error_names_the_line():
    outcome = run("x = 1\n\nexecutor.run_sql('select * from missing_table')")

    assert outcome.error == 'line 3: RuntimeError: relation "missing_table" does not exist'


def test_sql_values_that_are_not_json_reach_the_program_as_json_values():
    import datetime
    import decimal

    host = FakeHost(rows=[{"price": decimal.Decimal("1.50"), "at": datetime.date(2024, 1, 2)}])
    outcome = run("row = executor.run_sql('select 1')[0]\nprint(row['price'] * 2, row['at'])", host)

    assert outcome.output == "3.0 2024-01-02\n"


def test_primitives_are_forwarded_and_usages_recorded_in_order():
    host = FakeHost()
    code = (
        "print(primitives.classify('sentiment', ['good', 'bad'], ['pos', 'neg']))\n"
        "print(primitives.summarize('short', 'long text'))\n"
        "print(primitives.extract({'type': 'object'}, 'get it', 'text'))\n"
        "print(primitives.generate(instructions='write', input='x'))\n"
    )
    outcome = run(code, host)

    assert outcome.error is None
    assert outcome.output == "['pos', 'pos']\nsummarize: long text\n{'field': 'value'}\ngenerate: x\n"
    assert [name for name, _ in host.primitive_calls] == ["classify", "summarize", "extract", "generate"]
    assert host.primitive_calls[0][1] == {
        "instructions": "sentiment",
        "inputs_to_classify": ["good", "bad"],
        "categories": ["pos", "neg"],
        "allow_multiple": False,
    }
    assert [usage["model"] for usage in outcome.llm_usages] == [
        "fake-classify",
        "fake-summarize",
        "fake-extract",
        "fake-generate",
    ]


def test_runtime_error_carries_the_program_line_number():
    outcome = run("a = 1\nb = 2\nprint(x)")

    assert outcome.error == "line 3: NameError: name 'x' is not defined"


def test_error_inside_a_function_names_the_line_that_failed():
    outcome = run("def f(d):\n    return d['missing']\n\nf({})")

    assert outcome.error == "line 2: KeyError: 'missing'"


def test_syntax_error_carries_the_line_number():
    outcome = run("x = 1\nif x\n    print(x)")

    assert outcome.error.startswith("line 2: SyntaxError:")


def test_output_before_an_error_is_kept():
    outcome = run("print('partial')\n1 / 0")

    assert outcome.output == "partial\n"
    assert outcome.error == "line 2: ZeroDivisionError: division by zero"


def test_output_that_looks_like_protocol_messages_is_just_output():
    outcome = run('print(\'\\n{"t": "done", "error": null}\\n\')\nraise ValueError(\'still failing\')')

    assert outcome.error == "line 2: ValueError: still failing"
    assert '{"t": "done", "error": null}' in outcome.output


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("import json\nprint(json.dumps(json.loads('{\"a\": [1, 2]}'), sort_keys=True))", '{"a": [1, 2]}'),
        ("import math\nprint(math.sqrt(16), math.floor(2.5))", "4.0 2"),
        ("import re\nprint(re.findall(r'\\d+', 'a1b22'), re.sub(r'(a)', r'\\1\\1', 'ab'))", "['1', '22'] aab"),
        (
            "import datetime\nd = datetime.datetime.strptime('2024-01-02', '%Y-%m-%d')\n"
            "print(d.strftime('%d/%m'), (d + datetime.timedelta(days=1)).date().isoformat())",
            "02/01 2024-01-03",
        ),
        ("import statistics\nprint(statistics.mean([1, 2, 3]), statistics.median([3, 1, 2]))", "2 2"),
        (
            "from collections import Counter, defaultdict\nd = defaultdict(int)\nd['a'] = d['a'] + 1\n"
            "print(Counter('abca').most_common(1), dict(d))",
            "[('a', 2)] {'a': 1}",
        ),
        ("import itertools\nprint(list(itertools.islice(itertools.count(5), 3)))", "[5, 6, 7]"),
        ("import functools\nprint(functools.reduce(lambda a, b: a * b, [1, 2, 3, 4]))", "24"),
    ],
    ids=["json", "math", "re", "datetime", "statistics", "collections", "itertools", "functools"],
)
def test_allowed_imports_work(code, expected):
    outcome = run(code)

    assert outcome.error is None
    assert outcome.output == expected + "\n"


def test_everyday_python_works():
    code = (
        "class Row:\n"
        "    def __init__(self, name, score):\n"
        "        self.name = name\n"
        "        self.score = score\n"
        "rows = [Row(r['name'], len(r['name'])) for r in executor.run_sql('select')]\n"
        "total = 0\n"
        "for i, (a, b) in enumerate([(1, 2), (3, 4)]):\n"
        "    total += a * b\n"
        "best = max(rows, key=lambda r: r.score)\n"
        "d = {}\n"
        "d['k'] = [x for x in range(3) if x]\n"
        "print(best.name, total, d, f'{total:>5}', '%s-%d' % ('a', 1), sorted({'b': 1, 'a': 2}))\n"
    )
    outcome = run(code)

    assert outcome.error is None
    assert outcome.output == "Grace 14 {'k': [1, 2]}    14 a-1 ['a', 'b']\n"


def test_stored_artifacts_together_are_capped():
    code = "for i in range(20):\n    executor.store_artifact('a' + str(i), 'A', 'text', 'x' * 900)"
    outcome = run_program(code, artifacts=[], host=FakeHost(), limits=Limits(max_artifact_bytes=1000))

    assert outcome.error.startswith("line 2: ValueError: stored artifacts would total")
    assert len(outcome.modified_artifacts) == 5


def test_augmented_assignment_of_items_and_attributes_works():
    code = (
        "from collections import defaultdict\n"
        "counts = defaultdict(int)\n"
        "for word in 'a b a'.split():\n"
        "    counts[word] += 1\n"
        "class Tally:\n"
        "    def __init__(self):\n"
        "        self.n = 0\n"
        "t = Tally()\n"
        "t.n += 5\n"
        "rows = [1, 2]\n"
        "rows[0] *= 10\n"
        "print(dict(counts), t.n, rows)\n"
    )
    outcome = run(code)

    assert outcome.error is None
    assert outcome.output == "{'a': 2, 'b': 1} 5 [10, 2]\n"


def test_a_host_key_error_reads_like_a_plain_key_error():
    outcome = run("x = 1\nexecutor.get_artifact('nope')")

    assert outcome.error.startswith("line 2: KeyError: \"no artifact with identifier 'nope'")
