"""Whole-step CUDA graphs (``Trainer(cuda_graph=True)``) and the index stream they read.

The stream's tests run anywhere; the graph's need a GPU (``pytest -m gpu``).
"""

from __future__ import annotations

import pathlib

import pytest
import torch

from gemkit.data.transitions import Transitions
from gemkit.errors import GemkitError
from gemkit.train import TrainConfig, Trainer, train
from gemkit.train.batches import IndexStream
from gemkit.train.checkpoint import load_trainer_state, save_checkpoint
from gemkit.train.graphs import GRAPH_CHUNK, LockstepRows, RunRows


def _per_step(seed: int, n: int, batch: int, steps: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    draws = [torch.randint(0, n, (batch,), generator=g) for _ in range(steps)]
    return draws, g.get_state()


@pytest.mark.parametrize(
    ("n", "chunk", "per_take"), [(1_000, 10, 4), (1_000_000, 10, 4), (1_000_000, GRAPH_CHUNK, 300)]
)
def test_index_stream_hands_out_the_per_step_draws(n: int, chunk: int, per_take: int) -> None:
    steps, batch = 2 * chunk + 3, 256  # two refills (GRAPH_CHUNK: the trainer's real size)
    draws, _ = _per_step(5, n, batch, steps)
    cpu = torch.device("cpu")
    stream = IndexStream(torch.Generator().manual_seed(5), n, batch, chunk=chunk, device=cpu)
    got: list[torch.Tensor] = []
    while len(got) < steps:
        start, k = stream.take(min(per_take, steps - len(got)))
        assert 1 <= k <= per_take and start + k <= chunk
        got += [stream.buffer[start + i].clone() for i in range(k)]
    for a, b in zip(got, draws, strict=True):
        assert torch.equal(a, b)


def test_index_stream_state_is_the_one_by_one_state_mid_chunk() -> None:
    n, batch = 5_000, 64
    cpu = torch.device("cpu")
    stream = IndexStream(torch.Generator().manual_seed(2), n, batch, chunk=8, device=cpu)
    handed = 0
    for k in (3, 5, 2, 7):  # crosses a refill
        handed += stream.take(k)[1]
        assert torch.equal(stream.state(), _per_step(2, n, batch, handed)[1])
    # restoring a state drops the rows drawn ahead and goes on exactly from there
    saved = stream.state()
    nxt = stream.buffer[stream.pos].clone() if stream.pos < stream.chunk else None
    other = IndexStream(torch.Generator(), n, batch, chunk=8, device=torch.device("cpu"))
    other.set_state(saved)
    start, _ = other.take(1)
    expect = _per_step(2, n, batch, handed + 1)[0][-1]
    assert torch.equal(other.buffer[start], expect)
    if nxt is not None:
        assert torch.equal(nxt, expect)


def test_index_stream_gives_back_the_rows_a_stopped_replay_did_not_train_on() -> None:
    """A graph replay stopped after i of k steps gives back k - i rows: the next take hands
    them out again, and the checkpointed state is that of i steps taken one by one."""
    n, batch, cpu = 5_000, 64, torch.device("cpu")
    stream = IndexStream(torch.Generator().manual_seed(3), n, batch, chunk=8, device=cpu)
    start, k = stream.take(6)
    stream.untake(k - 2)  # trained on two
    assert torch.equal(stream.state(), _per_step(3, n, batch, 2)[1])
    again, _ = stream.take(1)
    assert again == start + 2
    assert torch.equal(stream.buffer[again], _per_step(3, n, batch, 3)[0][-1])
    with pytest.raises(ValueError, match="give back"):
        stream.untake(4)


def test_lockstep_rows_stack_each_runs_own_minibatches(fork_transitions: Transitions) -> None:
    """A batch of runs replayed as one graph reads row r of every run's own index stream: the
    stacked minibatch is each run's own, in run order, and streams out of step are an error."""
    from gemkit.train.batches import pack_for

    cpu = torch.device("cpu")
    cfg = TrainConfig(batch_size=16)
    data = pack_for(fork_transitions, cfg)
    streams = [IndexStream(torch.Generator().manual_seed(s), data.n_transitions, 16, chunk=4,
                           device=cpu) for s in (0, 1, 2)]  # fmt: skip
    rows = LockstepRows([RunRows(st, data) for st in streams])
    for _ in range(3):  # across a refill
        start, k = rows.take(3)
        for i in range(k):
            got = rows.gather(torch.tensor([start + i]))
            for r, st in enumerate(streams):
                want = data.gather(st.buffer[start + i])
                for key in want:
                    assert torch.equal(got[key][r], want[key])
    rows.untake(1)
    assert {st.pos for st in streams} == {streams[0].pos}
    streams[1].take(1)  # one run's stream moved alone
    with pytest.raises(RuntimeError, match="out of step"):
        rows.take(1)


def test_index_stream_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        IndexStream(torch.Generator(), 10, 4, chunk=0, device=torch.device("cpu"))
    stream = IndexStream(torch.Generator(), 10, 4, chunk=2, device=torch.device("cpu"))
    with pytest.raises(ValueError, match="k must be"):
        stream.take(0)


def test_cuda_graph_needs_a_cuda_device_and_no_graphs_of_the_compiler(
    fork_transitions: Transitions,
) -> None:
    data = fork_transitions
    with pytest.raises(GemkitError, match="needs a CUDA device"):
        Trainer(data, TrainConfig(device="cpu"), cuda_graph=True)
    with pytest.raises(GemkitError, match="captures CUDA graphs of its own"):
        Trainer(data, TrainConfig(device="cuda"), compile=True, compile_mode="reduce-overhead",
                cuda_graph=True)  # fmt: skip


def test_train_steps_sums_what_train_step_returns(fork_transitions: Transitions) -> None:
    data = fork_transitions
    cfg = TrainConfig(n_critics=2, hidden=(16, 16), batch_size=32, seed=4)
    a = Trainer(data, cfg, pretrain_steps=3)
    b = Trainer(data, cfg, pretrain_steps=3)
    sums, counts = a.train_steps(7)  # crosses pretrain -> joint
    ref: dict[str, torch.Tensor] = {}
    for _ in range(7):
        for k, v in b.train_step().items():
            ref[k] = ref[k] + v if k in ref else v.clone()
    assert sorted(sums) == sorted(ref)
    assert counts["loss_behavior"] == 7 and counts["loss_critic"] == 4
    for k in ref:
        torch.testing.assert_close(sums[k], ref[k], rtol=0, atol=0)
    for pa, pb in zip(a.critic.parameters(), b.critic.parameters(), strict=True):
        assert torch.equal(pa, pb)


# ---------------------------------------------------------------- on a GPU
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _params(t: Trainer) -> list[torch.Tensor]:
    return [p.detach().cpu() for net in t.networks().values() for p in net.state_dict().values()]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("compiled", [False, True], ids=["eager-kernels", "compiled"])
def test_graph_steps_equal_eager_steps_on_cuda(
    compiled: bool, fork_transitions: Transitions
) -> None:
    data = fork_transitions
    cfg = TrainConfig(n_critics=3, hidden=(32, 32), batch_size=64, seed=1, device="cuda",
                      unimodal_baseline=True)  # fmt: skip
    eager = Trainer(data, cfg, pretrain_steps=6, compile=compiled)
    graph = Trainer(data, cfg, pretrain_steps=6, compile=compiled, cuda_graph=True)
    e_sums, e_counts = eager.train_steps(40)  # pretrain: 3 warm-up + 3 replayed; joint: 3 + 31
    g_sums, g_counts = graph.train_steps(40)
    assert graph.cuda_graph and graph._graphs is not None
    assert set(graph._graphs.graphs) == {"joint"}  # captured; pretraining's graph freed
    assert g_counts == e_counts and sorted(g_sums) == sorted(e_sums)
    for k in e_sums:
        torch.testing.assert_close(g_sums[k].cpu(), e_sums[k].cpu(), rtol=1e-4, atol=1e-5)
    for a, b in zip(_params(graph), _params(eager), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert torch.equal(graph.rng_state(), eager.rng_state())
    assert graph.step == eager.step == 40


@pytest.mark.gpu
@gpu
def test_graph_run_resumes_from_a_mid_chunk_checkpoint(
    fork_transitions: Transitions, tmp_path: pathlib.Path
) -> None:
    data = fork_transitions
    cfg = TrainConfig(n_critics=2, hidden=(32, 32), batch_size=64, seed=3, device="cuda",
                      gmm_pretrain_steps=4)  # fmt: skip
    whole = Trainer(data, cfg, cuda_graph=True)
    whole.train_steps(60)
    first = Trainer(data, cfg, cuda_graph=True)
    first.train_steps(27)  # mid-chunk, after both captures
    save_checkpoint(tmp_path / "half", first)
    second = Trainer(data, cfg, cuda_graph=True)
    load_trainer_state(tmp_path / "half", second)
    second.train_steps(33)  # warms up and captures its joint graph afresh
    for a, b in zip(_params(second), _params(whole), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert torch.equal(second.rng_state(), whole.rng_state())
    # and the run loop (checkpoints mid-chunk, metrics from the graph's sums) trains the same
    models = train(data, cfg, tmp_path / "run", 60, save_every=25, tensorboard=False,
                   cuda_graph=True)  # fmt: skip
    for a, b in zip(models.critic.parameters(), whole.critic.parameters(), strict=True):
        torch.testing.assert_close(a.detach().cpu(), b.detach().cpu(), rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@gpu
def test_a_batch_of_runs_replays_one_graph_as_its_eager_steps(
    fork_transitions: Transitions,
) -> None:
    """R runs with CUDA graphs, stepped as one batch (one captured graph per phase), train as
    the same batch stepped eagerly from the same index streams: statistics, weights, steps and
    each run's generator state."""
    from gemkit.train.batch import RunBatch

    data = fork_transitions

    def runs(graphs: bool) -> list[Trainer]:
        return [Trainer(data, TrainConfig(n_critics=2, hidden=(32, 32), batch_size=64, seed=s,
                                          device="cuda"), pretrain_steps=5, cuda_graph=graphs)
                for s in (0, 1, 2)]  # fmt: skip

    graphed, eager = RunBatch(runs(True)), RunBatch(runs(True))
    eager._graphs = None  # the same streams and capturable Adam, stepped without a graph
    g_sums, g_counts = graphed.train_steps(30)
    e_sums, e_counts = eager.train_steps(30)
    assert graphed._graphs is not None and set(graphed._graphs.graphs) == {"joint"}
    assert g_counts == e_counts and sorted(g_sums) == sorted(e_sums)
    for k in e_sums:
        assert g_sums[k].shape == (3,)
        torch.testing.assert_close(g_sums[k].cpu(), e_sums[k].cpu(), rtol=1e-4, atol=1e-5)
    graphed.sync()
    eager.sync()
    for tg, te in zip(graphed.trainers, eager.trainers, strict=True):
        assert tg.step == te.step == 30
        assert torch.equal(tg.rng_state(), te.rng_state())
        for a, b in zip(_params(tg), _params(te), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
