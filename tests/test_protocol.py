import copy

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trl_icrl import Episode, ProtocolError, TokenProtocol
from trl_icrl.protocol import CONTINUE, TERMINATED, TRIAL_FIELDS, TRUNCATED
from trl_icrl.tiny_model import llama3_tokenizer

OBS = [f"r{r} c{c}" for r in range(4) for c in range(4)]


@st.composite
def episodes(draw, final_tile_always: bool = False):
    out = []
    for _ in range(draw(st.integers(1, 4))):
        steps = draw(st.integers(1, 6))
        end = draw(st.sampled_from(["terminated", "truncated"]))
        rewards = [0.0] * steps
        if end == "terminated" and draw(st.booleans()):
            rewards[-1] = 1.0
        out.append(Episode(observations=[draw(st.sampled_from(OBS)) for _ in range(steps)],
                           actions=[draw(st.integers(0, 3)) for _ in range(steps)], rewards=rewards,
                           terminated=end == "terminated", truncated=end == "truncated",
                           final_observation=draw(st.sampled_from(OBS))
                           if end == "truncated" or final_tile_always else None))
    return out


def assert_round_trip(protocol: TokenProtocol, history: list[Episode]) -> None:
    trial = protocol.render(history)
    assert protocol.parse(trial.input_ids) == history
    assert len(trial.actions) == sum(len(e.actions) for e in history)
    # the token at each decision position is followed by the action word taken there
    for pos, action in zip(trial.decision_positions, trial.actions):
        assert trial.input_ids[pos + 1] == protocol.action_token_ids[action]


@settings(max_examples=60, deadline=None)
@given(episodes())
def test_round_trip(protocol, history):
    assert_round_trip(protocol, history)


@pytest.fixture(scope="module")
def llama3_protocol(env_codec):
    return TokenProtocol(llama3_tokenizer(), "llama3", env_codec.action_words, env_codec.observation_texts(),
                         env_codec.reward_values)


@settings(max_examples=60, deadline=None)
@given(episodes())
def test_llama3_format_round_trip(llama3_protocol, history):
    """The paper's format (Llama-3 header tokens around every piece) renders and parses back, decisions included."""
    assert_round_trip(llama3_protocol, history)
    assert llama3_protocol.render(history).input_ids[0] == llama3_protocol.episode_start[0]


@pytest.mark.parametrize("fixture", ["protocol", "step_protocol"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 1200), max_size=40))
def test_parser_never_crashes_on_arbitrary_ids(request, fixture, ids):
    try:
        request.getfixturevalue(fixture).parse(ids)
    except ProtocolError as err:
        assert "parse" in str(err)


def test_trial_bookkeeping(protocol, tokenizer):
    history = [Episode(["r0 c0", "r0 c1"], [2, 1], [0.0, 1.0], terminated=True),
               Episode(["r0 c0"], [0], [0.0], truncated=True, final_observation="r0 c0")]
    trial = protocol.render(history)
    words = tokenizer.convert_ids_to_tokens(trial.input_ids)
    assert words == ["<ep>", "r0", "c0", "right", "r0", "c1", "down", "1.0", "</ep>",
                     "<ep>", "r0", "c0", "left", "r0", "c0", "<trunc>", "</ep>"]
    assert trial.decision_positions == [2, 5, 11]
    assert trial.dones == [CONTINUE, TERMINATED, TRUNCATED]
    assert trial.next_positions == [5, -1, 14]  # truncation bootstraps from the final observation
    assert trial.episode_offsets == [0, 9]
    window = trial.window(9)
    assert window.decision_positions == [2] and window.next_positions == [5] and window.episode_index == [0]


def test_llama3_format_pieces(tokenizer, env_codec):
    """The paper's preset needs Llama-3 special tokens: a tokenizer without them is rejected clearly."""
    with pytest.raises(ProtocolError, match="lacks protocol token"):
        TokenProtocol(tokenizer, "llama3", env_codec.action_words, env_codec.observation_texts(), (1.0,))


def test_pad_token_falls_back_to_eos_then_zero(tokenizer, env_codec):
    """Trainer batches and agent rollouts pad with ``TokenProtocol.pad_token_id``: pad, else eos, else 0."""
    def pad_of(**tokens) -> int:
        changed = copy.deepcopy(tokenizer)
        for name, value in tokens.items():
            setattr(changed, name, value)
        return TokenProtocol(changed, "compact", env_codec.action_words, env_codec.observation_texts(),
                             env_codec.reward_values).pad_token_id

    left, right = tokenizer.convert_tokens_to_ids(["left", "right"])
    assert pad_of(pad_token="left", eos_token="right") == left
    assert pad_of(pad_token=None, eos_token="right") == right
    assert pad_of(pad_token=None, eos_token=None) == 0


def test_bad_inputs(protocol):
    with pytest.raises(ProtocolError, match="unknown observation"):
        protocol.observation("r99 c99")
    with pytest.raises(ProtocolError, match="outside"):
        protocol.outcome(7, 0.0)
    with pytest.raises(ProtocolError, match="unknown reward"):
        protocol.outcome(0, 3.0)
    with pytest.raises(ProtocolError, match="empty"):
        protocol.parse([])


@settings(max_examples=60, deadline=None)
@given(episodes(final_tile_always=True))
def test_step_format_round_trip(step_protocol, history):
    trial = step_protocol.render(history)
    assert step_protocol.parse(trial.input_ids) == history
    n_steps = sum(len(e.actions) for e in history)
    truncations = sum(e.truncated for e in history)
    assert len(trial.input_ids) == n_steps + len(history) + truncations  # one word a step, a start word each
    assert trial.decision_positions[0] == 0 and all(trial.input_ids[p] for p in trial.decision_positions)


def test_step_format_bookkeeping(step_protocol, tokenizer):
    """Where an episode ended, and how, is written; every other word is a decision position."""
    history = [Episode(["r0 c0", "r0 c1"], [2, 1], [0.0, 1.0], terminated=True, final_observation="r1 c1"),
               Episode(["r0 c0", "r1 c0"], [1, 2], [0.0, 0.0], terminated=True, final_observation="r1 c1"),
               Episode(["r0 c0"], [0], [0.0], truncated=True, final_observation="r0 c0")]
    trial = step_protocol.render(history)
    words = tokenizer.convert_ids_to_tokens(trial.input_ids)
    assert words == ["r0_c0:start", "r0_c1:right", "r1_c1:down:1.0:end",
                     "r0_c0:start", "r1_c0:down", "r1_c1:right:end",
                     "r0_c0:start", "r0_c0:left", "<trunc>"]
    assert trial.decision_positions == [0, 1, 3, 4, 6]
    assert trial.dones == [CONTINUE, TERMINATED, CONTINUE, TERMINATED, TRUNCATED]
    assert trial.next_positions == [1, -1, 4, -1, 7]  # the next state's word; truncation bootstraps from it
    assert trial.episode_offsets == [0, 3, 6]
    with pytest.raises(ProtocolError, match="writes the tile every step ends on"):
        step_protocol.render([Episode(["r0 c0"], [2], [1.0], terminated=True)])
    with pytest.raises(ProtocolError, match="no step word"):
        step_protocol.render([Episode(["r0 c0"], [2], [3.0], terminated=True, final_observation="r0 c1")])


def test_step_words_start_from_their_parts(tiny_lm, tokenizer):
    """The embedded model initialises a step word's embedding as the sum of its parts' embeddings."""
    vocab, embeddings = tokenizer.get_vocab(), tiny_lm.get_input_embeddings().weight
    parts = embeddings[[vocab["r2"], vocab["c3"], vocab["right"], vocab["1.0"], vocab["end"]]].sum(0)
    assert torch.allclose(embeddings[vocab["r2_c3:right:1.0:end"]], parts)


def test_the_trial_schema_is_the_one_source_of_trial_columns():
    import dataclasses

    from trl_icrl.protocol import TRIAL_SCHEMA, Trial
    from trl_icrl.replay_store import FEATURES, collate_trials

    assert tuple(f.name for f in dataclasses.fields(Trial)) == TRIAL_FIELDS
    assert [name for name in FEATURES if name in TRIAL_FIELDS] == list(TRIAL_FIELDS)
    rows = [dict(Trial([5, 6, 7], [0, 1], [2, 3], [0.0, 1.0], [0, 1], [1, -1], [0, 0], [0]).to_row()),
            dict(Trial([5, 6], [0], [1], [0.5], [2], [1], [0], [0]).to_row())]
    batch = collate_trials(rows, pad_token_id=9)
    per_decision = {f.name: f.batch_pad for f in TRIAL_SCHEMA if f.batch_pad is not None}
    assert set(batch) == {"input_ids", "decision_mask", *per_decision}
    for name, pad in per_decision.items():
        assert batch[name][1, 1].item() == pad, name  # the shorter trial is padded with its field's pad
    assert batch["input_ids"][1].tolist() == [5, 6, 9] and batch["rewards"].dtype.is_floating_point
