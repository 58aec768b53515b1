"""Sparse tensors on rustorch are refused clearly (cpp_ext/aten/sparse_refusal.cpp)."""

from __future__ import annotations

import pytest
import torch


def test_sparse_embedding_backward_names_op_and_device():
    emb = torch.nn.Embedding(10, 3, sparse=True).to("rustorch")
    out = emb(torch.tensor([1, 2, 1], device="rustorch")).sum()
    with pytest.raises(NotImplementedError,
                       match=r"sparse tensors are not supported on the rustorch device \(aten::"):
        out.backward()


def test_dense_embedding_still_trains():
    emb = torch.nn.Embedding(10, 3).to("rustorch")
    emb(torch.tensor([1, 2, 1], device="rustorch")).sum().backward()
    assert emb.weight.grad.layout == torch.strided
    assert emb.weight.grad.cpu()[1].eq(2).all() and emb.weight.grad.cpu()[0].eq(0).all()


def test_sparse_coo_tensor_on_device_is_refused():
    with pytest.raises(NotImplementedError, match="Embedding\\(sparse=True\\)"):
        torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.tensor([1.0, 2.0]), (3,),
                                check_invariants=False,
                                device="rustorch")
