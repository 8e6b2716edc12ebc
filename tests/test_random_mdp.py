"""Tests for the random tabular MDP family: encoding, validation, generation, the RandomMDP env and its oracle."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from trl_icrl.agent.exploration import ExplorationSchedule
from trl_icrl.baselines import OracleAgent, QLearningAgent, play_agents
from trl_icrl.envs import (
    MDP_ENV_ID,
    MDP_FAMILIES,
    RANDOM_MDP,
    RESERVED_HELDOUT_MAPS,
    RESERVED_VALIDATION_MAPS,
    TRAIN_SEED_LIMIT,
    MDPFamily,
    RandomMDP,
    evaluation_maps,
    generate_mdp,
    heldout_maps,
    make_env,
    mdp_dynamics,
    mdp_goal_distances,
    mdp_optimal_actions,
    validate_mdp,
    validation_maps,
)

# From the start 0: action 0 to state 1, action 1 into the trap 2, actions 2 and 3 stay. From 1, action 0 reaches
# the goal 3. Distances: 0:2, 1:1, 2:-1 (trap), 3:0 (goal).
EXAMPLE = ("S1,2,0,0", "3,1,0,2", "H", "G")
GREEDY = ExplorationSchedule([1.0])


def expected_step(mdp, state, action):
    """(next state, reward, terminated) read off the encoding by hand."""
    if mdp[state] in ("G", "H"):
        return state, 0.0, True
    target = int(mdp[state].removeprefix("S").split(",")[action])
    return target, {"G": 1.0, "H": -1.0}.get(mdp[target], 0.0), mdp[target] in ("G", "H")


def with_start(mdp, state):
    """The MDP with ``state`` as its only start."""
    states = [s.removeprefix("S") for s in mdp]
    states[state] = "S" + states[state]
    return tuple(states)


def reachable(mdp):
    """States reachable from the starts (the starts included)."""
    seen = {i for i, s in enumerate(mdp) if s.startswith("S")}
    frontier = list(seen)
    while frontier:
        state = frontier.pop()
        if mdp[state] not in ("G", "H"):
            for target in map(int, mdp[state].removeprefix("S").split(",")):
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
    return sorted(seen)


def test_tables_distances_and_optimal_actions_of_the_example():
    table, rewards, terminal, starts = mdp_dynamics(EXAMPLE)
    np.testing.assert_array_equal(table, [[1, 2, 0, 0], [3, 1, 0, 2], [2, 2, 2, 2], [3, 3, 3, 3]])
    np.testing.assert_array_equal(rewards, [0.0, 0.0, -1.0, 1.0])
    np.testing.assert_array_equal(terminal, [False, False, True, True])
    assert starts == (0,)
    np.testing.assert_array_equal(mdp_goal_distances(EXAMPLE), [2, 1, -1, 0])
    assert mdp_optimal_actions(EXAMPLE) == [(0,), (0,), (), ()]
    env = RandomMDP(desc=EXAMPLE)
    assert [env.optimal_action(s) for s in (0, 1)] == [0, 0]
    assert env.shortest_path_length(0) == 2 and env.optimal_return() == 1.0 and env.optimal_return(0.5) == 0.5
    with pytest.raises(ValueError, match="state 2 is a goal, a trap or cannot reach a goal"):
        env.optimal_action(2)
    with pytest.raises(ValueError, match="state must be in 0..3, got 4"):
        env.optimal_action(4)
    with pytest.raises(RuntimeError, match="call reset"):
        env.shortest_path_length()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_encoding_round_trips_through_the_joined_string(seed):
    mdp = RANDOM_MDP.generate(seed)
    assert isinstance(mdp, tuple) and all(isinstance(s, str) and "/" not in s for s in mdp)
    assert validate_mdp("/".join(mdp)) == validate_mdp(list(mdp)) == mdp
    env, from_string = RandomMDP(desc=mdp), make_env(MDP_ENV_ID, desc="/".join(mdp)).unwrapped
    assert from_string.map == env.map == mdp and from_string.n_states == len(mdp)
    for a, b in zip(mdp_dynamics(env.map), mdp_dynamics(from_string.map)):
        np.testing.assert_array_equal(a, b)
    switched = RandomMDP(desc=EXAMPLE)
    switched.reset(seed=0, options={"desc": "/".join(mdp)})
    assert switched.map == mdp and switched.observation_space.n == len(mdp)


@pytest.mark.parametrize(
    ("desc", "error", "match"),
    [
        ("", ValueError, "state 0 is ''"),
        ((), ValueError, "empty MDP"),
        (("S1,2,0,0", 3, "G"), TypeError, "MDP states must be strings"),
        ("S1,2,0/G", ValueError, "state 0 is 'S1,2,0': expected 'G' \\(goal\\), 'H' \\(trap\\) or 4 next-state ids"),
        ("S1,2,0,0/1,x,0,0/G", ValueError, "state 1 is '1,x,0,0'"),
        ("S01,2,0,0/G/G", ValueError, "without leading zeros"),
        ("S1,1,1,1/SG", ValueError, "state 1 is 'SG'"),
        ("S1,7,0,0/G", ValueError, "state 0, action 1 leads to state 7, but the MDP has states 0..1"),
        ("1,1,1,1/G", ValueError, "no start state"),
        ("S0,1,0,0/H", ValueError, "no goal state 'G'"),
        ("S0,0,0,0/G", ValueError, "no goal is reachable from the start state 0"),
        ("S1,2,0,0/1,1,1,3/G/H", ValueError, "no goal is reachable from state 1, which can be reached from a start"),
    ],
)
def test_validation_errors_name_the_problem(desc, error, match):
    with pytest.raises(error, match=match):
        validate_mdp(desc)
    with pytest.raises(error, match=match):
        RandomMDP(desc=desc)


def test_unreachable_dead_ends_and_several_starts_are_valid():
    mdp = ("S1,1,1,1", "G", "S0,0,2,2", "3,3,3,3")  # state 3 reaches no goal but no start reaches it
    env = RandomMDP(desc=mdp)
    assert env.start_states == (0, 2)
    assert {env.reset(seed=seed)[0] for seed in range(20)} == {0, 2}
    assert env.optimal_return() == 1.0 and env.optimal_return(0.5) == 0.75  # moves 1 and 2 from the starts


def test_generation_is_reproducible_respects_exclude_and_gives_up():
    first = RANDOM_MDP.generate(7)
    assert first == generate_mdp(7) == RandomMDP(seed=7).map == gym.make(MDP_ENV_ID, seed=7).unwrapped.map
    second = RANDOM_MDP.generate(7, exclude={first})
    assert second != first and second == RANDOM_MDP.generate(7, exclude={first})
    many = RANDOM_MDP.generate_many(30, seed=3, exclude={first})
    assert len(set(many)) == 30 and first not in many
    assert RANDOM_MDP.generate_many(10, seed=3, exclude={first}) == many[:10]

    class Everything:
        def __contains__(self, mdp):
            return True

    with pytest.raises(RuntimeError, match="no valid MDP in 5 tries"):
        generate_mdp(0, exclude=Everything(), max_tries=5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_states_range": (1, 4)}, "n_states_range must satisfy 2 <= min <= max"),
        ({"n_states_range": (9, 8)}, "n_states_range must satisfy"),
        ({"p_trap": 1.0}, "p_trap must be in \\[0, 1\\)"),
        ({"min_hops": 0}, "min_hops must be in 1..31"),
        ({"n_states_range": (2, 4), "min_hops": 4}, "min_hops must be in 1..3"),
    ],
)
def test_invalid_family_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MDPFamily("bad", **kwargs)


def test_generated_mdps_are_valid_sized_and_need_several_moves():
    assert MDP_FAMILIES == {"mdp": RANDOM_MDP} and RANDOM_MDP.n_states_range == (8, 32)
    sizes = set()
    for mdp in RANDOM_MDP.generate_many(300, seed=0):
        assert validate_mdp(mdp) == mdp
        assert 8 <= len(mdp) <= 32 and mdp.count("G") == 1
        sizes.add(len(mdp))
        _, _, _, starts = mdp_dynamics(mdp)
        assert len(starts) == 1 and mdp_goal_distances(mdp)[starts[0]] >= 3
    assert min(sizes) <= 10 and max(sizes) >= 30


def test_dynamics_follow_the_encoding_for_every_state_and_action():
    mdps = [EXAMPLE, ("S1,1,1,1", "G", "S0,0,2,2", "3,3,3,3"), *RANDOM_MDP.generate_many(5, seed=11)]
    for mdp in mdps:
        for state in reachable(mdp):
            if mdp[state] in ("G", "H"):
                continue
            env = RandomMDP(desc=with_start(mdp, state))
            for action in range(4):
                assert env.reset(seed=0) == (state, {})
                obs, reward, terminated, truncated, _ = env.step(action)
                assert (obs, reward, terminated) == expected_step(mdp, state, action) and not truncated
                if terminated:  # goals and traps absorb: staying put, no reward, still terminated
                    assert env.step((action + 1) % 4)[:3] == (obs, 0.0, True)


def test_steps_truncate_and_reject_bad_actions():
    env = RandomMDP(desc=EXAMPLE, max_episode_steps=3)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    assert env.step(2)[:4] == (0, 0.0, False, False)
    assert env.step(3)[:4] == (0, 0.0, False, False)
    assert env.step(2)[:4] == (0, 0.0, False, True)
    with pytest.raises(ValueError, match="action must be in 0..3, got 4"):
        env.step(4)
    env.reset()
    assert env.step(1)[:4] == (2, -1.0, True, False)


@pytest.mark.filterwarnings("ignore:.*not having a spec:UserWarning")
def test_env_contract_options_and_attributes():
    env = gym.make(MDP_ENV_ID, seed=0)
    mdp_env = env.unwrapped
    assert "TimeLimit" not in str(env) and mdp_env.max_episode_steps == 50
    obs, info = env.reset(seed=0)
    assert obs == mdp_env.start_tile and mdp_env.map[obs].startswith("S") and info == {}
    assert mdp_env.map_seed == 0 and mdp_env.family is RANDOM_MDP and mdp_env.n_states == len(mdp_env.map)
    assert env.observation_space == gym.spaces.Discrete(mdp_env.n_states) and env.action_space == gym.spaces.Discrete(4)
    assert not hasattr(mdp_env, "ncol")
    assert RandomMDP.action_words == ("north", "east", "south", "west") and RandomMDP.reward_values == (1.0, -1.0)
    env.reset(options={"map_seed": 5})
    assert mdp_env.map == RANDOM_MDP.generate(5) and mdp_env.map_seed == 5
    env.reset(options={"desc": EXAMPLE})
    assert mdp_env.map == EXAMPLE and mdp_env.map_seed is None and env.observation_space.n == 4
    with pytest.raises(ValueError, match="options may hold one of 'desc' or 'map_seed'"):
        env.reset(options={"desc": EXAMPLE, "map_seed": 1})
    with pytest.raises(ValueError, match="give either desc or a map seed"):
        RandomMDP(desc=EXAMPLE, seed=1)
    with pytest.raises(ValueError, match="seed is an alias of map_seed"):
        RandomMDP(seed=1, map_seed=2)
    with pytest.raises(ValueError, match="unknown MDP family 'id'"):
        RandomMDP(family="id")
    small = MDPFamily("small", n_states_range=(4, 5), min_hops=2)
    assert 4 <= len(RandomMDP(family=small, map_seed=0).map) <= 5
    assert RandomMDP().map_seed is not None
    check_env(mdp_env)
    check_env(RandomMDP(map_seed=1))


def test_oracle_reaches_the_goal_in_the_shortest_path_length_with_the_optimal_return():
    for mdp in RANDOM_MDP.generate_many(50, seed=1):
        env = RandomMDP(desc=mdp)
        state, _ = env.reset(seed=0)
        moves, total, terminated = 0, 0.0, False
        while not terminated:
            state, reward, terminated, truncated, _ = env.step(env.optimal_action(state))
            moves, total = moves + 1, total + reward
            assert not truncated
        assert mdp[state] == "G" and moves == env.shortest_path_length() >= 3
        assert total == env.optimal_return() == 1.0
        assert env.optimal_return(0.9) == pytest.approx(0.9 ** (moves - 1))


def test_training_draws_never_produce_a_reserved_heldout_instance():
    reserved = evaluation_maps(MDP_ENV_ID)
    assert reserved == frozenset(heldout_maps(RANDOM_MDP, RESERVED_HELDOUT_MAPS)) | frozenset(
        validation_maps(RANDOM_MDP, RESERVED_VALIDATION_MAPS))
    assert len(reserved) == RESERVED_HELDOUT_MAPS + RESERVED_VALIDATION_MAPS
    assert all(validate_mdp(m) == m for m in reserved)
    assert evaluation_maps(MDP_ENV_ID, seed=1) != reserved
    seeds = np.random.default_rng(0).integers(0, TRAIN_SEED_LIMIT, 2000).tolist()
    training = [RANDOM_MDP.generate(seed, exclude=reserved) for seed in seeds]
    assert not reserved.intersection(training)


def make_envs(n, seed):
    return [make_env(MDP_ENV_ID, desc="/".join(mdp)) for mdp in RANDOM_MDP.generate_many(n, seed)]


def test_oracle_agent_always_succeeds_in_play_agents():
    envs = make_envs(20, seed=2)
    result = play_agents([OracleAgent(env) for env in envs], envs, 3, GREEDY, np.random.default_rng(0),
                         reset_seeds=list(range(20)))
    assert result.successes.mean() == 1.0
    np.testing.assert_array_equal(result.lengths[:, 0], [env.unwrapped.shortest_path_length() for env in envs])


def test_optimistic_q_learning_improves_over_a_trial():
    envs = make_envs(60, seed=3)
    agents = [QLearningAgent(int(env.observation_space.n), 4, lr=0.5, gamma=0.9, init=1.0,
                             rng=np.random.default_rng(i)) for i, env in enumerate(envs)]
    result = play_agents(agents, envs, 30, GREEDY, np.random.default_rng(0), reset_seeds=list(range(60)))
    first, late = result.successes[:, 0].mean(), result.successes[:, 20:].mean()
    assert late > first + 0.3 and late > 0.9
