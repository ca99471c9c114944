"""distributed.py without processes: a Context with a faked world size stands for each rank in turn."""

import pytest
import torch

from snnlab.engine import distributed


def per_sample_loss(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """[B, N] -> [B]. Elementwise products and short sums, no matmul: with the values below every result is
    exact, so the comparisons are bitwise whatever order a CPU adds in."""
    return (w * x).sum(dim=1)


# (world size, batch size): uneven slices, ranks left without samples, and even slices (share 1).
# Shares n * W / B and slice sizes are powers of two or dyadic fractions, so no step rounds.
CASES = [(3, 4), (5, 8), (3, 2), (4, 2), (2, 4), (1, 4)]


@pytest.mark.parametrize("world_size, batch_size", CASES)
def test_slices_of_any_size_give_the_gradient_and_sums_of_the_whole_batch(world_size, batch_size):
    x = torch.randint(-8, 9, (batch_size, 3), generator=torch.Generator().manual_seed(batch_size)).float() / 2
    w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    whole = per_sample_loss(w, x).mean()
    (expected,) = torch.autograd.grad(whole, w)

    grads, loss_sums, corrects = [], [], []
    for rank in range(world_size):
        ctx = distributed.Context(rank=rank, world_size=world_size)
        part = distributed.shard(batch_size, ctx)
        size = len(x[part])
        # As the trainer does: a rank without samples still passes a loss that reaches every parameter.
        loss = per_sample_loss(w, x[part]).mean() if size else w.sum() * 0.0
        weighted, loss_sum, correct = distributed.whole_batch(loss, size, size, batch_size, ctx)
        (grad,) = torch.autograd.grad(weighted, w)
        grads.append(grad)
        loss_sums.append(loss_sum)
        corrects.append(correct)

    averaged = torch.stack(grads).sum(dim=0) / world_size  # what DDP's all-reduce leaves on every rank
    assert torch.equal(averaged, expected)
    # Without a process group the sums are each rank's own; over the ranks they add up to the batch's.
    assert sum(loss_sums) == whole.item() * batch_size
    assert sum(corrects) == batch_size


def test_one_process_trains_on_its_loss_as_it_is():
    loss = torch.tensor(1.5, requires_grad=True) * 1
    weighted, loss_sum, correct = distributed.whole_batch(loss, 3, 4, 4, distributed.SINGLE)
    assert weighted is loss and (loss_sum, correct) == (6.0, 3)


def test_a_slice_without_samples_adds_nothing_even_when_the_outputs_are_not_finite():
    # A diverged network's zero loss is nan (0 * inf); the empty slice must not turn the batch's sum nan.
    loss = torch.tensor(float("inf"), requires_grad=True) * 0.0
    weighted, loss_sum, correct = distributed.whole_batch(loss, 0, 0, 2, distributed.Context(rank=2, world_size=3))
    assert weighted is loss and (loss_sum, correct) == (0.0, 0)
