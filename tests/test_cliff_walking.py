"""Tests for the parametric cliff walking: map validation and generation, the env, its held-out maps and baselines."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from trl_icrl.agent.exploration import ExplorationSchedule
from trl_icrl.baselines import OracleAgent, QLearningAgent, play_agents
from trl_icrl.envs import (
    CANONICAL_CLIFF_MAP,
    CLIFF_ENV_ID,
    CLIFF_FAMILY,
    TRAIN_SEED_LIMIT,
    CliffFamily,
    ParametricCliffWalking,
    cliff_goal_distances,
    cliff_optimal_actions,
    evaluation_maps,
    make_env,
    validate_cliff_map,
)
from trl_icrl.envs.families import map_family

UP, RIGHT, DOWN, LEFT = range(4)
GREEDY = ExplorationSchedule.parse("greedy")

# Tiles:  0 1 2 3     F F F F    Start 4, goal 7, cliffs 5 and 6: the safe path goes up, right x3, down (5 moves).
#         4 5 6 7     S C C G
SMALL_MAP = ("FFFF", "SCCG")


def border(desc):
    """The tiles ``(row, col)`` on the map's border."""
    nrow, ncol = len(desc), len(desc[0])
    return {(r, c) for r in range(nrow) for c in range(ncol) if r in (0, nrow - 1) or c in (0, ncol - 1)}


def position(desc, letter):
    """``(row, col)`` of the only tile ``letter`` of the map."""
    tile = "".join(desc).index(letter)
    return divmod(tile, len(desc[0]))


@pytest.mark.parametrize(
    ("desc", "match"),
    [
        ((), "empty map"),
        ("", "empty map"),
        (("SFF", "FG"), r"ragged map: the rows have lengths \[3, 2\]"),
        (("SFFG",), "map is 4 wide and 1 high; a cliff map has 2..10 rows and 3..12 columns"),
        (("SG", "FF"), "map is 2 wide and 2 high"),
        (("S" + "F" * 11 + "G", "F" * 13), "map is 13 wide and 2 high"),
        (("SFG",) + ("FFF",) * 10, "map is 3 wide and 11 high"),
        (("SFF", "FHG"), r"unknown tile 'H' at row 1, column 1 \(tiles are S, F, C, G\)"),
        ("FFF/sCG", "unknown tile 's' at row 1, column 0"),
        (("FFF", "FCG"), "map has 0 start tiles 'S'; a cliff map has exactly one"),
        (("SFS", "FCG"), "map has 2 start tiles 'S'"),
        (("SFF", "FCF"), "map has 0 goal tiles 'G'"),
        (("SFG", "GCF"), "map has 2 goal tiles 'G'"),
        (("SCF", "CFG"), r"the goal is not reachable from the start tile 0 \(row 0, column 0\) without stepping into"),
        (("FFCF", "FSCG"), r"start tile 5 \(row 1, column 1\)"),
    ],
)
def test_validate_cliff_map_names_the_problem(desc, match):
    with pytest.raises(ValueError, match=match):
        validate_cliff_map(desc)


def test_validate_cliff_map_accepts_rows_or_a_joined_string():
    assert validate_cliff_map(SMALL_MAP) == validate_cliff_map("FFFF/SCCG") == SMALL_MAP
    assert validate_cliff_map(list(CANONICAL_CLIFF_MAP)) == CANONICAL_CLIFF_MAP
    with pytest.raises(TypeError, match="map rows must be strings"):
        validate_cliff_map([b"SCG", b"FFF"])


def test_distances_and_optimal_actions_follow_the_safe_path():
    assert cliff_goal_distances(SMALL_MAP).tolist() == [4, 3, 2, 1, 5, -1, -1, 0]
    assert cliff_optimal_actions(SMALL_MAP) == [(RIGHT,), (RIGHT,), (RIGHT,), (DOWN,), (UP,), (), (), ()]
    assert cliff_optimal_actions(("SFF", "FFF", "FFG"))[0] == (RIGHT, DOWN)
    dist = cliff_goal_distances(CANONICAL_CLIFF_MAP)
    assert dist.shape == (48,) and dist[36] == 13 and dist[47] == 0 and (dist[37:47] == -1).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"height_range": (1, 3)}, r"height_range must satisfy 2 <= min <= max <= 10, got \(1, 3\)"),
        ({"height_range": (5, 4)}, r"height_range must satisfy .* got \(5, 4\)"),
        ({"width_range": (3, 13)}, r"width_range must satisfy 3 <= min <= max <= 12, got \(3, 13\)"),
        ({"segments": (0, 2)}, r"segments must satisfy 1 <= min <= max, got \(0, 2\)"),
        ({"p_edge": 1.5}, r"p_edge must be in \[0, 1\], got 1.5"),
        ({"min_hops": 0}, r"min_hops must be in 1..39 .* got 0"),
    ],
)
def test_cliff_family_rejects_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CliffFamily("bad", **{"height_range": (3, 5), "width_range": (3, 8), **kwargs})


def test_generation_is_reproducible_by_seed_and_respects_exclude():
    assert CLIFF_FAMILY.generate(7) == CLIFF_FAMILY.generate(7)
    assert CLIFF_FAMILY.generate(7, exclude={CLIFF_FAMILY.generate(7)}) != CLIFF_FAMILY.generate(7)
    maps = CLIFF_FAMILY.generate_many(200, seed=2024)
    assert len(set(maps)) == 200 and CLIFF_FAMILY.generate_many(200, seed=2024) == maps
    assert CLIFF_FAMILY.generate_many(10, seed=2024) == maps[:10]
    again = CLIFF_FAMILY.generate_many(50, seed=2024, exclude=set(maps))
    assert not set(again) & set(maps) and len(set(again)) == 50
    assert len(set(CLIFF_FAMILY.generate_many(200, seed=2025)) & set(maps)) < 20


def test_generation_gives_up_after_max_tries():
    with pytest.raises(ValueError, match="max_tries must be at least 1"):
        CLIFF_FAMILY.generate(0, max_tries=0)
    # Only 32 maps of 2 x 3 tiles have a cliff and the goal 3 or more safe moves from the start.
    tiny = CliffFamily("tiny", height_range=(2, 2), width_range=(3, 3), min_hops=3)
    assert len(set(tiny.generate_many(32, seed=0))) == 32
    with pytest.raises(RuntimeError, match=r"no valid map in 10000 tries for CliffFamily\(name='tiny'"):
        tiny.generate_many(33, seed=0)


def test_generated_maps_vary_size_start_goal_and_cliffs():
    maps = CLIFF_FAMILY.generate_many(2000, seed=0)
    assert {(len(m), len(m[0])) for m in maps} == {(h, w) for h in range(3, 6) for w in range(3, 9)}
    starts = {position(m, "S") for m in maps if len(m) == 5 and len(m[0]) == 8}
    assert starts == border(("F" * 8,) * 5)  # every border tile is some map's start
    same_edge = [m for m in maps if position(m, "S")[0] == position(m, "G")[0] in (0, len(m) - 1)]
    assert len(same_edge) > 400
    assert any(m[-1] == "S" + "C" * (len(m[0]) - 2) + "G" for m in maps)  # the canonical layout, in smaller maps


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    heights=st.lists(st.integers(2, 10), min_size=2, max_size=2).map(sorted),
    widths=st.lists(st.integers(3, 12), min_size=2, max_size=2).map(sorted),
    segments=st.lists(st.integers(1, 4), min_size=2, max_size=2).map(sorted),
    p_edge=st.floats(0, 1),
    min_hops=st.integers(1, 3),
)
def test_every_generated_map_is_valid_with_a_safe_path(seed, heights, widths, segments, p_edge, min_hops):
    family = CliffFamily("any", tuple(heights), tuple(widths), tuple(segments), p_edge, min_hops)
    desc = family.generate(seed)
    assert validate_cliff_map(desc) == desc and family.generate(seed) == desc
    assert heights[0] <= len(desc) <= heights[1] and widths[0] <= len(desc[0]) <= widths[1]
    assert "C" in "".join(desc)
    assert {position(desc, "S"), position(desc, "G")} <= border(desc)
    env = ParametricCliffWalking(desc=desc)
    assert env.shortest_path_length() >= min_hops
    tile = env.reset()[0]
    for _ in range(env.shortest_path_length()):  # the oracle's path only visits safe tiles
        tile, reward, terminated, _, _ = env.step(env.optimal_action(tile))
        assert reward == -1.0 and "".join(desc)[tile] != "C"
    assert terminated and "".join(desc)[tile] == "G"


def test_canonical_map_dynamics_equal_gymnasium_cliff_walking():
    reference = gym.make("CliffWalking-v1").unwrapped
    assert reference.is_slippery is False  # gymnasium 1.x's default
    env = ParametricCliffWalking(desc=CANONICAL_CLIFF_MAP)
    assert env.observation_space == reference.observation_space and env.action_space == reference.action_space
    assert env.reset(seed=0) == reference.reset(seed=0) == (36, {"prob": 1})
    for state in range(48):
        for action in range(4):
            expected = [(float(p), int(s), float(r), bool(t)) for p, s, r, t in reference.P[state][action]]
            assert env.P[state][action] == expected, (state, action)
            env.tile, reference.s = state, state
            assert env.step(action)[:3] == tuple(reference.step(action)[:3]), (state, action)
    assert env.optimal_return() == -13.0 and env.shortest_path_length() == 13


def test_a_cliff_costs_100_and_returns_to_the_start_without_ending_the_episode():
    env = ParametricCliffWalking(desc=SMALL_MAP)
    assert env.reset(seed=0)[0] == 4
    assert env.step(RIGHT) == (4, -100.0, False, False, {"prob": 1.0, "is_success": False})
    assert env.step(LEFT)[:4] == (4, -1.0, False, False)  # into the wall: stays
    steps = [env.step(a)[:4] for a in (UP, RIGHT, RIGHT, DOWN)]
    assert steps == [(0, -1.0, False, False), (1, -1.0, False, False), (2, -1.0, False, False),
                     (4, -100.0, False, False)]
    steps = [env.step(a) for a in (UP, RIGHT, RIGHT, RIGHT, DOWN)]
    assert steps[-1] == (7, -1.0, True, False, {"prob": 1.0, "is_success": True})


@pytest.mark.parametrize("max_episode_steps", [100, 7])
def test_walking_into_a_wall_truncates_at_the_step_limit(max_episode_steps):
    env = ParametricCliffWalking(desc=SMALL_MAP, max_episode_steps=max_episode_steps)
    for _ in range(2):  # the count restarts at reset
        env.reset()
        steps = [env.step(LEFT) for _ in range(max_episode_steps)]
        assert all(s[:3] == (4, -1.0, False) for s in steps)
        assert [s[3] for s in steps] == [False] * (max_episode_steps - 1) + [True]


def test_oracle_helpers():
    env = ParametricCliffWalking(desc=SMALL_MAP)
    assert env.shortest_path_length() == 5 and env.shortest_path_length(1) == 3 and env.shortest_path_length(5) == -1
    assert [env.optimal_action(t) for t in (4, 0, 1, 2, 3)] == [UP, RIGHT, RIGHT, RIGHT, DOWN]
    assert env.optimal_return() == -5.0 and env.optimal_return(0.5) == pytest.approx(-(1 + 0.5 + 0.25 + 0.125 + 0.0625))
    assert ParametricCliffWalking(desc=SMALL_MAP, max_episode_steps=3).optimal_return() == -3.0
    with pytest.raises(ValueError, match="tile must be in 0..7, got 8"):
        env.shortest_path_length(8)
    with pytest.raises(ValueError, match="tile 7 is the goal, a cliff or cannot reach the goal"):
        env.optimal_action(7)
    with pytest.raises(ValueError, match="tile 5 is the goal, a cliff"):
        env.optimal_action(5)
    with pytest.raises(ValueError, match="gamma must be in"):
        env.optimal_return(gamma=-0.1)


@pytest.mark.filterwarnings("ignore:.*not having a spec:UserWarning")
def test_make_registration_families_and_reset_options():
    env = gym.make(CLIFF_ENV_ID, seed=3)
    cliff = env.unwrapped
    assert isinstance(cliff, ParametricCliffWalking) and "TimeLimit" not in str(env)
    assert cliff.map == CLIFF_FAMILY.generate(3) and cliff.map_seed == 3 and cliff.family is CLIFF_FAMILY
    assert env.reset(seed=0)[0] == cliff.start_tile and "".join(cliff.map)[cliff.start_tile] == "S"
    assert env.observation_space.n == cliff.nrow * cliff.ncol
    check_env(cliff)
    env = make_env(CLIFF_ENV_ID, desc="FFF/SCG")
    assert env.unwrapped.map == ("FFF", "SCG") and env.unwrapped.map_seed is None
    assert env.reset(options={"map_seed": 5})[0] == env.unwrapped.start_tile
    assert env.unwrapped.map == CLIFF_FAMILY.generate(5) and env.unwrapped.map_seed == 5
    assert env.reset(options={"desc": CANONICAL_CLIFF_MAP}) == (36, {"prob": 1})
    assert env.observation_space == gym.spaces.Discrete(48) and (env.unwrapped.nrow, env.unwrapped.ncol) == (4, 12)
    with pytest.raises(ValueError, match="map has 0 goal tiles"):
        env.reset(options={"desc": ("SFF", "FCF")})
    assert env.unwrapped.map == CANONICAL_CLIFF_MAP  # a failed switch leaves the map as it was
    with pytest.raises(ValueError, match="options may hold one of 'desc' or 'map_seed'"):
        env.reset(options={"map": SMALL_MAP})
    assert map_family(CLIFF_ENV_ID, "cliff") is CLIFF_FAMILY
    assert ParametricCliffWalking.action_words == ("up", "right", "down", "left")
    assert ParametricCliffWalking.reward_values == (-1.0, -100.0)


def test_constructor_rejects_conflicting_arguments():
    with pytest.raises(ValueError, match="either desc or a map seed"):
        ParametricCliffWalking(desc=SMALL_MAP, map_seed=1)
    with pytest.raises(ValueError, match="seed is an alias of map_seed"):
        ParametricCliffWalking(seed=1, map_seed=2)
    with pytest.raises(ValueError, match="unknown map family 'id'"):
        ParametricCliffWalking(family="id")
    with pytest.raises(ValueError, match="max_episode_steps must be at least 1"):
        ParametricCliffWalking(max_episode_steps=0)
    with pytest.raises(ValueError, match="render_mode must be one of"):
        ParametricCliffWalking(render_mode="human")
    assert ParametricCliffWalking().map_seed is not None


def test_ansi_render_marks_the_agent():
    env = ParametricCliffWalking(desc=SMALL_MAP, render_mode="ansi")
    env.reset()
    assert env.render() == "FFFF\nxCCG\n"
    env.step(UP)
    assert env.render() == "xFFF\nSCCG\n"


def test_canonical_map_is_held_out_and_never_drawn_for_training():
    held_out = evaluation_maps(CLIFF_ENV_ID)
    assert CANONICAL_CLIFF_MAP in held_out and len(held_out) == 601  # 400 held-out, 200 validation, the canonical
    seeds = np.random.default_rng(0).integers(TRAIN_SEED_LIMIT, size=2000)
    drawn = {CLIFF_FAMILY.generate(int(s), exclude=held_out) for s in seeds}
    assert CANONICAL_CLIFF_MAP not in drawn and not drawn & held_out


def test_oracle_walks_the_shortest_safe_path_on_generated_maps():
    envs = [ParametricCliffWalking(desc=m) for m in CLIFF_FAMILY.generate_many(50, seed=11)]
    result = play_agents([OracleAgent(env) for env in envs], envs, 2, GREEDY, np.random.default_rng(0))
    shortest = np.array([[env.shortest_path_length()] * 2 for env in envs])
    np.testing.assert_array_equal(result.lengths, shortest)
    np.testing.assert_array_equal(result.returns, [[env.optimal_return()] * 2 for env in envs])
    assert result.successes.mean() == 1.0  # the env reports reaching the goal in info["is_success"]
    assert result.env_steps == shortest.sum()


def test_q_learning_learns_the_safe_path():
    envs = [ParametricCliffWalking(desc=m) for m in CLIFF_FAMILY.generate_many(10, seed=1)]
    agents = [QLearningAgent(env.observation_space.n, 4, rng=np.random.default_rng(i)) for i, env in enumerate(envs)]
    result = play_agents(agents, envs, 40, GREEDY, np.random.default_rng(0), reset_seeds=range(10))
    assert np.isfinite(result.returns).all()
    assert result.returns[:, -5:].mean() > result.returns[:, :5].mean()
    optimal = [env.optimal_return() for env in envs]
    assert (result.returns[:, -1] == optimal).mean() >= 0.8  # the shortest safe path on (nearly) every map
