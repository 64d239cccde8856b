"""The real-context probe against the fake Ollama: personas and server faults that make every
verdict move (`python -m lib probe`, and lib.asking.probe / haystack / probe_grid)."""

from __future__ import annotations

import json

import pytest

from lib.asking import haystack, probe
from lib.asking.probe_grid import ProbeCell, ProbePlan, ProbeResult, ProbeRow, read_whole, verdict_of
from lib.cli import main
from lib.config import Settings
from lib.library.store import Store
from lib.reading.tokens import get_counter

from fake_ollama import FakeOllama
from fake_personas import misses_middle, probe_liar, probe_oracle

CONTEXT = 32768


@pytest.fixture
def fake():
    with FakeOllama() as server:
        server.script(answer=probe_oracle, thinking="")
        yield server


def run_cli(capsys, fake, *extra: str) -> tuple[int, dict]:
    code = main(["probe", "--host", fake.url, "--context", str(CONTEXT), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def grid(result: dict) -> dict[int, list[str]]:
    """length -> the cells' statuses by depth."""
    rows: dict[int, list[str]] = {}
    for cell in result["cells"]:
        rows.setdefault(cell["length_tokens"], []).append(cell["status"])
    return rows


# ----------------------------------------------------------------------------- the verdicts


def test_an_oracle_on_a_server_that_reads_everything_is_all_green(capsys, fake):
    code, result = run_cli(capsys, fake)
    assert code == 0 and result["read_all"] is True
    assert result["verdict"] == (f"Your server reads the whole {CONTEXT:,}-token context and this model finds facts "
                                 "at every depth.")
    assert {c["status"] for c in result["cells"]} == {"green"}
    assert len(result["cells"]) == 25
    for cell in result["cells"]:
        assert set(cell) >= {"length_tokens", "depth", "found", "cited", "verified", "sent_tokens",
                             "server_read_tokens"}
        assert cell["found"] and cell["cited"] and cell["verified"]
        assert cell["server_read_tokens"] == cell["sent_tokens"]
    # Every call went out as the app sends it: truncate false, the same num_ctx, the facts in the prompt.
    assert [b["truncate"] for b in fake.chat_bodies] == [False] * 5
    assert {b["options"]["num_ctx"] for b in fake.chat_bodies} == {CONTEXT}
    lengths = sorted(grid(result))
    assert lengths[-1] <= CONTEXT - 4096 and lengths[0] >= CONTEXT * 0.1 * 0.95


def test_a_server_that_reads_only_the_last_40_percent_is_grey_where_it_cut(capsys, fake):
    fake.read_only(tail=0.4)
    code, result = run_cli(capsys, fake)
    assert code == 4 and result["read_all"] is False
    assert result["verdict"].startswith("Your server reads only about 40 % of each prompt")
    assert "the start of every document is cut" in result["verdict"]
    for statuses in grid(result).values():
        assert statuses == ["grey", "grey", "grey", "green", "green"]  # depths 0-50 % were never read
    assert all(c["server_read_tokens"] < c["sent_tokens"] * 0.45 for c in result["cells"])


def test_a_server_that_stops_at_a_fixed_length_says_where(capsys, fake):
    fake.read_only(limit=10000)
    code, result = run_cli(capsys, fake)
    assert code == 4
    assert result["verdict"].startswith("Your server stops reading at about 10,000 tokens: documents beyond that "
                                        "are cut")
    assert "set Folio's context to 10,000" in result["advice"]
    rows = grid(result)
    short, long = min(rows), max(rows)
    assert rows[short] == ["green"] * 5  # read whole
    assert rows[long][0] == "grey" and rows[long][-1] == "green"  # the start cut, the end read


def test_a_model_that_misses_the_middle_leaves_a_red_band(capsys, fake):
    fake.script(answer=misses_middle(0.3, 0.7), thinking="")
    code, result = run_cli(capsys, fake)
    assert code == 0  # the server read everything: only the model is at fault
    for statuses in grid(result).values():
        assert statuses == ["green", "green", "red", "green", "green"]
    assert "this model missed 5 of 25 facts: at depth 50 %" in result["verdict"]
    assert result["kind"] == "model"


@pytest.mark.parametrize("kind, invalid", [("quotes", False), ("ids", True)])
def test_a_liar_finds_the_facts_but_its_citations_do_not_verify(capsys, fake, kind, invalid):
    fake.script(answer=probe_liar(kind), thinking="")
    code, result = run_cli(capsys, fake, "--lengths", "0.5", "--depths", "0,50,100")
    assert code == 0
    assert [c["status"] for c in result["cells"]] == ["amber"] * 3
    assert all(c["found"] and not c["verified"] for c in result["cells"])
    assert all(c["cited"] is not invalid for c in result["cells"])  # invented IDs point nowhere
    assert "did not cite the passage holding the fact with a verified quote" in result["verdict"]
    assert ("name passages that do not exist" in result["verdict"]) is invalid


def test_the_table_the_cost_and_progress(capsys, fake):
    code = main(["probe", "--host", fake.url, "--context", str(CONTEXT), "--lengths", "0.25,0.5",
                 "--depths", "0,100"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "cost: 2 calls (2 lengths x 2 depths), 24,576 prompt tokens for the server to read; time unknown" in err
    assert "[1/2] Call 1 of 2: the server reads 8,192 tokens" in err and "[2/2]" in err
    assert "0 %" in out and "100 %" in out and "server read" in out and out.count("cited") >= 4
    assert out.strip().endswith("finds facts at every depth.")
    # The second run knows the server's speed from the first and says how long it will take.
    main(["probe", "--host", fake.url, "--context", str(CONTEXT), "--lengths", "0.25", "--depths", "0"])
    assert "prompt tokens/s this server and model showed before" in capsys.readouterr().err


def test_results_are_kept_with_date_server_and_model(capsys, fake, tmp_path):
    code, result = run_cli(capsys, fake, "--lengths", "0.5", "--depths", "50")
    runs = Store().list_probe_runs()
    assert len(runs) == 1 and runs[0]["id"] == result["id"]
    assert (runs[0]["host"], runs[0]["model"], runs[0]["backend"]) == (fake.url, "qwen3-128k:14b", "ollama")
    assert runs[0]["created_at"] == result["date"] and runs[0]["read_all"] is True
    stored = ProbeResult.from_json(Store().get_probe_run(result["id"]))
    assert [c.to_json() for c in stored.cells] == result["cells"]
    run_cli(capsys, fake, "--lengths", "0.5", "--depths", "50", "--no-save")
    assert len(Store().list_probe_runs()) == 1


def test_the_real_context_is_the_smaller_of_configured_and_trained(capsys, fake):
    code = main(["probe", "--host", fake.url, "--model", "qwen3:14b", "--context", "131072", "--json",
                 "--lengths", "0.5", "--depths", "0"])
    result = json.loads(capsys.readouterr().out)
    assert result["context"] == 40960 and result["trained_context"] == 40960
    assert "(the model holds 40,960 tokens, not the 131,072 configured)" in result["verdict"]
    assert code == 0


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("option, value, message", [
    ("--lengths", "0,0.5", "--lengths: 0 is not a share of the context"),
    ("--lengths", "half", "give numbers separated by commas"),
    ("--depths", "0,150", "--depths: 150 is not a depth"),
])
def test_bad_options_exit_2_and_send_nothing(capsys, fake, option, value, message):
    code = main(["probe", "--host", fake.url, option, value])
    assert code == 2 and message in capsys.readouterr().err
    assert not fake.chat_bodies


def test_a_context_too_small_for_the_probe_is_refused_plainly(capsys, fake):
    code = main(["probe", "--host", fake.url, "--context", "4600", "--lengths", "0.1"])
    assert code == 2
    assert "cannot hold a probe document" in capsys.readouterr().err


def test_an_unreachable_server_exits_3(capsys, tmp_path):
    with FakeOllama() as gone:
        url = gone.url
    code = main(["probe", "--host", url, "--json"])
    assert code == 3
    assert json.loads(capsys.readouterr().out)["exit_status"] == 3


def test_a_server_crash_mid_probe_exits_3(capsys, fake):
    fake.interrupt_next("error", after=1)
    code = main(["probe", "--host", fake.url, "--context", str(CONTEXT), "--lengths", "0.25", "--depths", "0"])
    assert code == 3
    assert "stopped answering" in capsys.readouterr().err


# ----------------------------------------------------------------- the pieces, without a server


def test_haystack_documents_have_the_size_asked_and_the_facts_where_asked():
    counter = get_counter()
    facts = haystack.make_facts([0, 25, 50, 75, 100], seed=11)
    assert len({f.code for f in facts}) == 5 and len({f.place for f in facts}) == 5
    for target, near in ((2_000, 0.15), (40_000, 0.02), (160_000, 0.02)):  # 160,000 repeats the prose
        stack = haystack.build_haystack(target, facts, counter)
        assert target * 0.97 <= stack.rendered_tokens <= target
        assert stack.rendered_tokens == counter.count(haystack.prompt.render_document(stack.document))
        for fact in facts:
            passage = stack.document.passage(stack.passage_of[fact.depth])
            assert fact.sentence in passage.text
            assert abs(stack.position_of[fact.depth] - fact.depth / 100) < near
        assert "".join(p.text for p in stack.document.passages) == stack.document.text


def test_facts_are_found_however_the_code_is_written():
    fact = haystack.Fact("Amber Room", "7361-QX", 0)
    assert fact.found_in("The code is 7361 qx.") and fact.found_in("7361QX") and fact.found_in("７３６１－ＱＸ")
    assert not fact.found_in("The code is 7361-QZ.")


def test_prompt_counts_within_a_few_tokens_mean_read_whole():
    assert read_whole(10_000, 10_000, True) and read_whole(10_000, 9_990, True)
    assert read_whole(10_000, 5_000, True) is False
    assert read_whole(10_000, None, True) is None
    assert read_whole(10_000, 4_000, False)  # an estimate over-counts: only a far smaller count is a cut


def _plan(lengths=(1000, 2000), depths=(0, 100)) -> ProbePlan:
    return ProbePlan(context=4096, configured_context=4096, trained_context=None, fractions=(0.25, 0.5),
                     lengths=tuple(lengths), depths=tuple(depths), think=False, reserved=1024)


def _row(length: int, read: int | None, read_all, found=True) -> ProbeRow:
    cells = [ProbeCell(length, d, found, found, found, length, read, read_all) for d in (0, 100)]
    return ProbeRow(0.5, length, length, read, read_all, cells)


def test_a_server_that_does_not_report_its_count_is_not_given_the_all_clear():
    verdict = verdict_of(_plan(), [_row(1000, None, None), _row(2000, None, None)], model="m", backend="openai")
    assert verdict.read_all is None and verdict.kind == "unknown"
    assert verdict.text.startswith("Your server does not say how many prompt tokens it read")
    result = ProbeResult(_plan(), [], verdict, "h", "m", "openai", "2026-01-01")
    assert result.exit_status == 4


def test_a_stopped_probe_says_so():
    verdict = verdict_of(_plan(), [_row(1000, 1000, True)], model="m", backend="ollama", cancelled=True)
    assert "(stopped after 1 of 2 calls)" in verdict.text
    assert "reads whole prompts up to 1,000 tokens" in verdict.text  # never more than was tried
    assert verdict_of(_plan(), [], model="m", backend="ollama", cancelled=True).kind == "empty"


def test_the_plan_states_its_cost_and_estimates_time_from_measured_speed():
    settings = Settings(context=131072)
    plan = probe.plan_probe(settings, fractions=probe.LENGTHS, depths=probe.DEPTHS)
    assert plan.lengths == (13107, 32768, 65536, 98304, 124518) and plan.cells == 25
    assert plan.cost_text(None).endswith("time unknown: no speed measured yet for this server and model.")
    speed = probe.speed_from_rows([{"server_read_tokens": 10_000, "prompt_eval_s": 20.0, "eval_count": 100,
                                    "eval_s": 10.0}])
    assert speed.prompt_tps == 500 and speed.answer_tps == 10
    assert plan.seconds(speed) == pytest.approx(plan.tokens / 500 + 25 * probe.ANSWER_TOKENS_PER_FACT / 10)
    assert f"about {probe.duration_text(plan.seconds(speed))} at the 500 prompt tokens/s" in plan.cost_text(speed)
    assert probe.speed_from_rows([{"server_prompt_tokens": 5}]) is None


def test_an_older_library_gains_the_probe_table_and_keeps_its_data(tmp_path):
    import sqlite3

    from lib.library import store as store_module

    data = tmp_path / "old"
    data.mkdir()
    conn = sqlite3.connect(data / store_module.DB_NAME)
    for statement in store_module.MIGRATIONS[0]:  # a library written before the probe existed
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO conversations (title, created_at, updated_at, documents) VALUES ('Rent', 'x', 'x', '[]')")
    conn.commit()
    conn.close()
    store = Store(data)
    assert [c["title"] for c in store.list_conversations()] == ["Rent"]
    assert store.list_probe_runs() == []
    run_id = store.add_probe_run({"date": "2026-01-01T00:00:00+00:00", "backend": "ollama", "host": "h", "model": "m",
                                  "context": 4096, "read_all": None, "verdict": "v", "rows": []})
    assert store.get_probe_run(run_id)["verdict"] == "v" and store.list_probe_runs()[0]["read_all"] is None
    assert store.recent_calls("h", "m") == []


def test_the_time_estimate_also_learns_from_earlier_answers_to_the_same_server_and_model():
    store = Store()
    conversation = store.create_conversation([], "Rent", {})
    call = {"prompt_tokens": 9000, "server_prompt_tokens": 9000, "cached_tokens": 1000, "prompt_eval_s": 4.0,
            "eval_count": 50, "eval_s": 2.0}
    store.add_turn(conversation, "q", {"answer": "a", "calls": [call]}, {"host": "http://gpu:11434", "model": "m"})
    store.add_turn(conversation, "q2", {"answer": "a", "calls": [dict(call, prompt_eval_s=400.0)]},
                   {"host": "http://other:11434", "model": "m"})
    speed = probe.speed_from_rows(store.recent_calls("http://gpu:11434", "m"))
    assert speed.prompt_tps == 2000 and speed.answer_tps == 25  # cached tokens were not read again
    assert probe.speed_from_rows(store.recent_calls("http://gpu:11434", "other-model")) is None


def test_a_run_stored_after_a_step_resumes_where_it_stopped(fake):
    settings = Settings(host=fake.url, context=CONTEXT)
    plan = probe.plan_probe(settings, fractions=(0.25, 0.5), depths=(0, 100), trained_context=131072)
    first = probe.ProbeRun(plan, settings, seed=5)
    first.step()
    state = json.loads(json.dumps(first.to_state()))  # as a job runner would keep it
    resumed = probe.ProbeRun.resume(state, settings)
    assert not resumed.done and len(resumed.rows) == 1
    resumed.step()
    assert resumed.done and len(fake.chat_bodies) == 2
    result = resumed.result()
    assert result.date == first.date and [r.length_tokens for r in result.rows][0] == first.rows[0].length_tokens
    assert {c.status for c in result.cells} == {"green"} and result.exit_status == 0
    # The resumed call planted the facts the original run would have planted.
    assert resumed.rows[1].cells[0].code == haystack.make_facts(plan.depths, seed=5 * 100 + 1)[0].code
