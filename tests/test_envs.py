"""Tests for trl_icrl.envs: map validation and generation, and the ParametricFrozenLake environment."""


import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.toy_text.frozen_lake import FrozenLakeEnv, generate_random_map
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from trl_icrl.envs import (
    ENV_ID,
    IN_DISTRIBUTION,
    OUT_OF_DISTRIBUTION,
    STITCHING_MAP,
    MapFamily,
    NonStationarySchedule,
    ParametricFrozenLake,
    generate_map,
    goal_distances,
    optimal_actions,
    validate_map,
)

LEFT, DOWN, RIGHT, UP = range(4)

# Tiles:  0 1 2      S F H    Goal 8. Distances: 0:4 (down, down, right, right), 1:5, 3:3, 5:1, 6:2, 7:1.
#         3 4 5      F H F
#         6 7 8      F F G
SMALL_MAP = ("SFH", "FHF", "FFG")


def start_distances(desc):
    """Moves from each start tile of the map to its nearest goal."""
    dist = goal_distances(desc)
    return [int(dist[i]) for i, letter in enumerate("".join(desc)) if letter == "S"]


@pytest.mark.filterwarnings("ignore:.*not having a spec:UserWarning")
def test_make_with_seed_resets_and_passes_check_env():
    env = gym.make(ENV_ID, seed=0)
    obs, info = env.reset(seed=0)
    lake = env.unwrapped
    assert lake.map == IN_DISTRIBUTION.generate(0)
    assert lake.map_seed == 0
    assert "".join(lake.map)[obs] == "S"
    assert obs in env.observation_space and env.observation_space.n == lake.nrow * lake.ncol
    assert info == {"prob": 1}
    assert "TimeLimit" not in str(env)  # the environment truncates episodes itself
    check_env(lake)
    check_env(ParametricFrozenLake(map_seed=1, family="ood"))


@pytest.mark.filterwarnings("ignore:.*not having a spec:UserWarning")
def test_gymnasium_frozen_lake_idioms_work_on_our_env():
    """``desc`` is what gymnasium's FrozenLakeEnv holds, so code written for FrozenLake-v1 reads our map."""
    rows = generate_random_map(size=5, p=0.7, seed=3)
    env, reference = gym.make(ENV_ID, desc=rows), gym.make("FrozenLake-v1", desc=rows, is_slippery=False)
    lake, reference_lake = env.unwrapped, reference.unwrapped
    assert lake.desc.dtype == reference_lake.desc.dtype == np.dtype("S1")
    np.testing.assert_array_equal(lake.desc, reference_lake.desc)
    assert ["".join(c.decode("utf-8") for c in line) for line in lake.desc.tolist()] == rows
    holes = [(r, c) for r in range(lake.nrow) for c in range(lake.ncol) if lake.desc[r, c] == b"H"]
    assert holes and holes == [tuple(int(i) for i in rc) for rc in np.argwhere(reference_lake.desc == b"H")]
    assert lake.desc[lake.nrow - 1, lake.ncol - 1] == b"G" and lake.map == tuple(rows)
    # A bytes array passes both ways: gymnasium's desc builds our env, ours builds gymnasium's.
    assert ParametricFrozenLake(desc=reference_lake.desc).map == tuple(rows)
    np.testing.assert_array_equal(FrozenLakeEnv(desc=lake.desc).desc, lake.desc)
    assert env.reset(seed=1, options={"desc": reference_lake.desc})[0] == 0
    obs, _ = env.reset(seed=0, options={"desc": ("SFF", "FHF", "FFG")})
    assert lake.desc.shape == (3, 3) and lake.desc[1, 1] == b"H" and lake.desc.flat[obs] == b"S"
    check_env(lake)


def test_same_reset_seed_gives_same_start_and_map_seed_alias_fixes_the_map():
    maps = {gym.make(ENV_ID, seed=5).unwrapped.map for _ in range(3)}
    assert maps == {IN_DISTRIBUTION.generate(5)}
    env = ParametricFrozenLake(desc=("SFFS", "FFFF", "SFGS"))
    starts = {env.reset(seed=s)[0] for s in range(40)}
    assert starts == {0, 3, 8, 11}
    assert [env.reset(seed=3)[0] for _ in range(2)] == [env.reset(seed=3)[0]] * 2


def test_generate_many_in_distribution_maps_valid_unique_and_deterministic():
    maps = IN_DISTRIBUTION.generate_many(1000, seed=2024)  # how fast: benchmarks/map_generation.py
    assert len(maps) == 1000 and len(set(maps)) == 1000
    for desc in maps:
        assert validate_map(desc) == desc
        assert 3 <= len(desc) <= 5 and 3 <= len(desc[0]) <= 5
        assert min(start_distances(desc)) >= 4
    assert IN_DISTRIBUTION.generate_many(1000, seed=2024) == maps
    assert IN_DISTRIBUTION.generate_many(10, seed=2024) == maps[:10]
    other = IN_DISTRIBUTION.generate_many(1000, seed=2025)
    assert len(set(other) & set(maps)) < 100


def test_generate_many_respects_exclude():
    first = IN_DISTRIBUTION.generate_many(20, seed=0)
    again = IN_DISTRIBUTION.generate_many(20, seed=0, exclude=set(first))
    assert not set(first) & set(again) and len(set(again)) == 20


def test_out_of_distribution_maps_are_6_to_7_per_side():
    maps = OUT_OF_DISTRIBUTION.generate_many(100, seed=1)
    sizes = {(len(desc), len(desc[0])) for desc in maps}
    assert sizes == {(6, 6), (6, 7), (7, 6), (7, 7)}
    assert all(min(start_distances(desc)) >= 4 for desc in maps)


def test_generate_map_skips_excluded_maps():
    desc = generate_map(3)
    assert generate_map(3) == desc
    assert generate_map(3, exclude={desc}) != desc


def test_stitching_map():
    assert validate_map(STITCHING_MAP) == STITCHING_MAP
    assert validate_map("HHFF/FFFF/SFFH/HFFF/HFFF/HFGF") == STITCHING_MAP
    dist = goal_distances(STITCHING_MAP)
    assert dist[22] == 0 and dist[8] == 5 and dist[2] == 5 and dist[11] == -1
    assert optimal_actions(STITCHING_MAP)[8] == (RIGHT,)
    assert optimal_actions(STITCHING_MAP)[10] == (DOWN,)
    env = ParametricFrozenLake(desc=STITCHING_MAP)
    assert env.reset(seed=0)[0] == 8 and env.shortest_path_length() == 5
    # The paper's context episodes: right x3 from the start falls into the hole at 11 ...
    assert [env.step(RIGHT)[:3] for _ in range(3)] == [(9, 0.0, False), (10, 0.0, False), (11, 0.0, True)]
    # ... and the stitched path: right to 10, then down to the goal at 22.
    env.reset(seed=0)
    steps = [env.step(a) for a in (RIGHT, RIGHT, DOWN, DOWN, DOWN)]
    assert [s[0] for s in steps] == [9, 10, 14, 18, 22]
    assert steps[-1][1:4] == (1.0, True, False)


@pytest.mark.parametrize(
    ("desc", "match"),
    [
        ((), "empty map"),
        ("", "empty map"),
        (("SFF", "FG"), r"ragged map: the rows have lengths \[3, 2\]"),
        (("SFF", "FXG"), "unknown tile 'X' at row 1, column 1"),
        ("SF/fG", "unknown tile 'f' at row 1, column 0"),
        (("FFF", "FFG"), "no start tile"),
        (("SFF", "FFF"), "no goal tile"),
        (("FSH", "HHF", "FFG"), r"no goal is reachable from the start tile 1 \(row 0, column 1\)"),
        (("S" + "F" * 10, "G" * 11), "11 wide and 2 high; each side must be in 1..10"),
        (("S",) + ("G",) * 10, "1 wide and 11 high"),
    ],
)
def test_validate_map_rejects_bad_maps(desc, match):
    with pytest.raises(ValueError, match=match):
        validate_map(desc)


def test_validate_map_rejects_non_string_rows():
    with pytest.raises(TypeError, match="map rows must be strings"):
        validate_map([b"SFG"])


def test_environment_rejects_bad_maps_with_the_validation_error():
    with pytest.raises(ValueError, match="no goal is reachable from the start tile 0"):
        ParametricFrozenLake(desc=("SH", "HG"))
    env = ParametricFrozenLake(desc=SMALL_MAP)
    with pytest.raises(ValueError, match="ragged map"):
        env.reset(options={"desc": ("SF", "G")})
    assert env.map == SMALL_MAP  # a failed switch leaves the map as it was


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width_range": (0, 3)}, r"width_range must satisfy 1 <= min <= max <= 10, got \(0, 3\)"),
        ({"height_range": (4, 3)}, r"height_range must satisfy .* got \(4, 3\)"),
        ({"width_range": (3, 11)}, r"width_range .* got \(3, 11\)"),
        ({"p_start": 0.0}, r"p_start must be in \(0, 1\), got 0.0"),
        ({"p_start": 1.0}, r"p_start must be in \(0, 1\)"),
        ({"p_goal": 0.0}, r"p_goal must be in \(0, 1\], got 0.0"),
        ({"p_goal": -0.5}, r"p_goal must be in \(0, 1\]"),
        ({"p_hole": 1.5}, r"p_hole must be in \[0, 1\], got 1.5"),
        ({"min_hops": -1}, r"min_hops must be in 0..24 .* got -1"),
        ({"width_range": (3, 3), "height_range": (3, 4), "min_hops": 12}, r"min_hops must be in 0..11"),
        ({"max_tries": 0}, "max_tries must be at least 1"),
    ],
)
def test_generate_map_rejects_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_map(0, **kwargs)


def test_map_family_rejects_invalid_parameters():
    with pytest.raises(ValueError, match="p_hole must be in"):
        MapFamily("bad", (3, 5), (3, 5), p_hole=-0.1)
    with pytest.raises(ValueError, match="n must be non-negative"):
        IN_DISTRIBUTION.generate_many(-1, seed=0)


def test_generate_map_gives_up_after_max_tries():
    with pytest.raises(RuntimeError, match=r"no valid map in 500 tries .*min_hops=20"):
        generate_map(0, width_range=(5, 5), height_range=(5, 5), min_hops=20, max_tries=500)
    # Only two 1 x 2 maps have a start and a goal ("SG" and "GS"), so ten distinct ones cannot be found.
    with pytest.raises(RuntimeError, match="no valid map in 10000 tries"):
        MapFamily("tiny", (2, 2), (1, 1), min_hops=1).generate_many(10, seed=0)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    widths=st.lists(st.integers(3, 7), min_size=2, max_size=2).map(sorted),
    heights=st.lists(st.integers(3, 7), min_size=2, max_size=2).map(sorted),
    min_hops=st.integers(1, 4),
)
def test_generated_maps_are_valid_and_far_enough(seed, widths, heights, min_hops):
    desc = generate_map(seed, tuple(widths), tuple(heights), min_hops=min_hops)
    assert validate_map(desc) == desc
    assert widths[0] <= len(desc[0]) <= widths[1] and heights[0] <= len(desc) <= heights[1]
    assert min(start_distances(desc)) >= min_hops
    assert generate_map(seed, tuple(widths), tuple(heights), min_hops=min_hops) == desc


def test_optimal_actions_descend_the_goal_distance():
    assert goal_distances(SMALL_MAP).tolist() == [4, 5, -1, 3, -1, 1, 2, 1, 0]
    assert optimal_actions(SMALL_MAP) == [(DOWN,), (LEFT,), (), (DOWN,), (), (DOWN,), (RIGHT,), (RIGHT,), ()]
    assert optimal_actions(("SFF", "FFG"))[0] == (DOWN, RIGHT)


def test_known_action_sequence_reaches_the_goal():
    env = ParametricFrozenLake(desc=SMALL_MAP)
    assert env.reset(seed=0) == (0, {"prob": 1})
    steps = [env.step(a) for a in (DOWN, DOWN, RIGHT, RIGHT)]
    assert [s[0] for s in steps] == [3, 6, 7, 8]
    assert [s[1:4] for s in steps] == [(0.0, False, False)] * 3 + [(1.0, True, False)]
    assert env.shortest_path_length() == 4 and env.shortest_path_length(1) == 5
    assert env.shortest_path_length(2) == -1
    assert env.optimal_return() == 1.0
    assert env.optimal_return(gamma=0.9) == pytest.approx(0.9**3)
    assert [env.optimal_action(t) for t in (0, 1, 3, 6, 7)] == [DOWN, LEFT, DOWN, RIGHT, RIGHT]


def test_optimal_helpers_reject_bad_input():
    env = ParametricFrozenLake(desc=SMALL_MAP)
    with pytest.raises(RuntimeError, match="call reset"):
        env.shortest_path_length()
    with pytest.raises(ValueError, match="tile must be in 0..8, got 9"):
        env.shortest_path_length(9)
    with pytest.raises(ValueError, match="tile 8 is a goal, a hole or cannot reach a goal"):
        env.optimal_action(8)
    with pytest.raises(ValueError, match="gamma must be in"):
        env.optimal_return(gamma=1.5)


def test_stepping_into_a_hole_terminates_without_reward():
    env = ParametricFrozenLake(desc=SMALL_MAP)
    env.reset(seed=0)
    assert env.step(RIGHT)[:4] == (1, 0.0, False, False)
    assert env.step(RIGHT)[:4] == (2, 0.0, True, False)


@pytest.mark.parametrize("max_episode_steps", [100, 7])
def test_walking_into_a_wall_truncates_at_the_step_limit(max_episode_steps):
    env = ParametricFrozenLake(desc=SMALL_MAP, max_episode_steps=max_episode_steps)
    for _ in range(2):  # the count restarts at reset
        env.reset(seed=0)
        steps = [env.step(LEFT) for _ in range(max_episode_steps)]
        assert all(s[:3] == (0, 0.0, False) for s in steps)
        assert [s[3] for s in steps] == [False] * (max_episode_steps - 1) + [True]


def test_optimal_return_averages_over_starts_and_respects_the_step_limit():
    desc = ("SFFG", "FFFF", "SFFF")  # start 0 is 3 moves from the goal, start 8 is 5 moves away
    assert ParametricFrozenLake(desc=desc).optimal_return(0.5) == pytest.approx((0.5**2 + 0.5**4) / 2)
    assert ParametricFrozenLake(desc=desc, max_episode_steps=4).optimal_return() == pytest.approx(0.5)


def test_slippery_dynamics():
    path = []
    for seed in range(5):
        env = ParametricFrozenLake(desc=SMALL_MAP, is_slippery=True, success_rate=1.0)
        env.reset(seed=seed)
        path.append([env.step(a)[:3] for a in (DOWN, DOWN, RIGHT, RIGHT)])
    assert all(p == path[0] for p in path) and path[0][-1] == (8, 1.0, True)
    env = ParametricFrozenLake(desc=SMALL_MAP, is_slippery=True)
    env.reset(seed=0)
    assert env.step(DOWN)[4] == {"prob": pytest.approx(1 / 3)}


def test_reset_options_switch_the_map_and_observation_space():
    env = gym.make(ENV_ID, desc="SFG")
    env.reset(seed=0)
    assert env.observation_space.n == 3 and env.unwrapped.map_seed is None
    obs, _ = env.reset(seed=0, options={"map_seed": 7})
    lake = env.unwrapped
    assert lake.map == IN_DISTRIBUTION.generate(7) and lake.map_seed == 7
    assert env.observation_space.n == lake.nrow * lake.ncol == lake.desc.size
    assert obs in env.observation_space
    obs, _ = env.reset(options={"desc": ("SF", "FF", "FG")})
    assert env.observation_space == gym.spaces.Discrete(6) and obs == 0
    assert (lake.nrow, lake.ncol, lake.map_seed) == (3, 2, None)
    with pytest.raises(ValueError, match="options may hold one of 'desc' or 'map_seed'"):
        env.reset(options={"map": "SG"})


def test_constructor_rejects_conflicting_arguments():
    with pytest.raises(ValueError, match="either desc or a map seed"):
        ParametricFrozenLake(desc=SMALL_MAP, map_seed=1)
    with pytest.raises(ValueError, match="seed is an alias of map_seed"):
        ParametricFrozenLake(seed=1, map_seed=2)
    with pytest.raises(ValueError, match="unknown map family 'big'"):
        ParametricFrozenLake(family="big")
    with pytest.raises(ValueError, match="max_episode_steps must be at least 1"):
        ParametricFrozenLake(max_episode_steps=0)


def test_family_is_used_for_generated_maps():
    env = ParametricFrozenLake(family="ood", map_seed=3)
    assert env.map == OUT_OF_DISTRIBUTION.generate(3) and 6 <= env.nrow <= 7
    assert ParametricFrozenLake().map_seed is not None


def test_ansi_render_shows_the_map():
    env = ParametricFrozenLake(desc=SMALL_MAP, render_mode="ansi")
    env.reset(seed=0)
    env.step(RIGHT)
    text = env.render()
    assert "(Right)" in text and "FHF\nFFG" in text


def test_non_stationary_schedule():
    first, second = IN_DISTRIBUTION.generate_many(2, seed=0)
    schedule = NonStationarySchedule(first, second, switch_after=30)
    assert [schedule.map_for_episode(e) for e in (0, 29, 30, 59)] == [first, first, second, second]
    assert [schedule.reset_options(e) for e in (0, 29, 30, 31)] == [None, None, {"desc": second}, None]
    env = ParametricFrozenLake(desc=first)
    for episode in range(32):  # the switch as a play loop makes it, from the env's reset options
        env.reset(seed=episode, options=schedule.reset_options(episode))
        assert env.map == schedule.map_for_episode(episode)
    assert NonStationarySchedule("SG", "GS").first == ("SG",)
    with pytest.raises(ValueError, match="no goal tile"):
        NonStationarySchedule(first, ("SF",))
    with pytest.raises(ValueError, match="episode must be non-negative"):
        schedule.map_for_episode(-1)


def test_goal_distances_is_an_integer_array():
    dist = goal_distances(STITCHING_MAP)
    assert dist.shape == (24,) and np.issubdtype(dist.dtype, np.integer)


def test_random_coordinate_offset_moves_the_text_not_the_env():
    """One offset per trial (seeded reset), kept across a mid-trial map switch that still fits, drawn again when one
    does not; reproducible from the reset seed and within the frame; observations, rewards and dynamics stay
    those of the bare env."""
    from trl_icrl.envs import RandomCoordinateOffset, make_env
    from trl_icrl.envs.codec import frozen_lake_codec

    codec = frozen_lake_codec("coords")
    wrapped = make_env(ENV_ID, desc=SMALL_MAP, coordinate_frame=7)
    bare = make_env(ENV_ID, desc=SMALL_MAP)
    assert isinstance(wrapped, RandomCoordinateOffset)
    check_env(make_env(ENV_ID, desc=SMALL_MAP, coordinate_frame=7))
    obs, _ = wrapped.reset(seed=12)
    assert obs == bare.reset(seed=12)[0]
    offset = wrapped.get_wrapper_attr("coordinate_offset")
    assert offset == (1, 3)  # a 4x3 map fits there too, so the switch below must keep it
    row, col = divmod(obs, 3)
    assert codec.observation_text(wrapped, obs) == f"r{row + offset[0]} c{col + offset[1]}"
    assert codec.observation_text(bare, obs) == f"r{row} c{col}"
    for action in (DOWN, DOWN, RIGHT, RIGHT):
        assert wrapped.step(action) == bare.step(action)
    wrapped.reset()
    assert wrapped.get_wrapper_attr("coordinate_offset") == offset  # same trial, same offset
    wrapped.reset(options={"desc": ("SFF", "FFF", "FFF", "FFG")})
    assert wrapped.get_wrapper_attr("coordinate_offset") == offset  # kept where a 4x3 map fits
    low = make_env(ENV_ID, desc=SMALL_MAP, coordinate_frame=7)
    low.reset(seed=11)
    assert low.get_wrapper_attr("coordinate_offset") == (4, 0)  # row 4: a 4-row map would leave the frame
    low.reset(options={"desc": ("SFF", "FFF", "FFF", "FFG")})
    assert low.get_wrapper_attr("coordinate_offset")[0] <= 3  # so the switch draws again
    wrapped.reset(options={"desc": ("SFFFFFF",) + ("FFFFFFF",) * 5 + ("FFFFFFG",)})
    assert wrapped.get_wrapper_attr("coordinate_offset") == (0, 0)  # a 7x7 map fits only there
    offsets = set()
    for seed in range(300):
        wrapped.reset(seed=seed, options={"desc": SMALL_MAP})
        offsets.add(wrapped.get_wrapper_attr("coordinate_offset"))
    assert offsets == {(r, c) for r in range(5) for c in range(5)}  # every place a 3x3 map fits in 7x7
    again = make_env(ENV_ID, desc=SMALL_MAP, coordinate_frame=7)
    again.reset(seed=12)
    assert again.get_wrapper_attr("coordinate_offset") == offset
    half = make_env(ENV_ID, desc=SMALL_MAP, coordinate_frame=7, coordinate_frame_share=0.5)
    at_origin = 0
    for seed in range(400):
        half.reset(seed=seed)
        at_origin += half.get_wrapper_attr("coordinate_offset") == (0, 0)
    assert 0.4 < at_origin / 400 < 0.6  # half the trials keep the origin (a random offset is (0, 0) 1 time in 25)
    with pytest.raises(ValueError, match="need a grid env"):
        make_env("CartPole-v1", coordinate_frame=7)
    with pytest.raises(ValueError, match="share must be in"):
        make_env(ENV_ID, desc=SMALL_MAP, coordinate_frame=7, coordinate_frame_share=1.5)
    with pytest.raises(ValueError, match="does not fit a frame of side 2"):
        make_env(ENV_ID, desc=SMALL_MAP, coordinate_frame=2).reset(seed=0)
