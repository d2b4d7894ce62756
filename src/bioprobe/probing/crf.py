"""A small batched linear-chain CRF in torch (log-likelihood and Viterbi decoding).

Tags are integers `0..num_tags-1`. Batches are left-aligned: `mask[b, t]` is true for the first
`length[b]` positions of sequence `b` (every sequence has at least one position). Scores:

    score(y) = start[y_0] + sum_t emissions[t, y_t]
               + sum_{t>0} transitions[y_{t-1}, y_t] + end[y_last]

The loops below run over time steps only (the recursion is sequential); batch and tags are
vectorised.
"""

from __future__ import annotations

import torch
from torch import nn


class LinearChainCRF(nn.Module):
    """Linear-chain CRF with learned start, end and transition scores."""

    def __init__(self, num_tags: int):
        super().__init__()
        if num_tags < 1:
            raise ValueError("num_tags must be >= 1")
        self.num_tags = num_tags
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))

    @staticmethod
    def _check(emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if emissions.dim() != 3 or mask.shape != emissions.shape[:2]:
            raise ValueError("emissions must be [B, T, K] and mask [B, T]")
        mask = mask.bool()
        if not bool(mask[:, 0].all()):
            raise ValueError("every sequence needs at least one position (mask[:, 0] all true)")
        return mask

    def score(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Unnormalised score of the tag sequences `tags` [B, T] -> [B]."""
        mask = self._check(emissions, mask)
        maskf = mask.to(emissions.dtype)
        tags = tags.masked_fill(~mask, 0)
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)  # [B, T]
        total = self.start[tags[:, 0]] + (emit * maskf).sum(1)
        if tags.shape[1] > 1:
            trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # [B, T-1]
            total = total + (trans * maskf[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1).unsqueeze(1)).squeeze(1)
        return total + self.end[last]

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z for each sequence (forward algorithm) -> [B]."""
        mask = self._check(emissions, mask)
        alpha = self.start + emissions[:, 0]  # [B, K]
        for t in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(
                alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1), dim=1
            )
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    def log_likelihood(
        self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """log p(tags | emissions) for each sequence -> [B]."""
        return self.score(emissions, tags, mask) - self.log_partition(emissions, mask)

    def forward(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor):
        """Mean negative log-likelihood over the batch (the training loss)."""
        return -self.log_likelihood(emissions, tags, mask).mean()

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Viterbi: the best tag sequence per sequence -> [B, T] (positions past the end are 0)."""
        mask = self._check(emissions, mask)
        batch, steps, _ = emissions.shape
        lengths = mask.sum(1)
        scores = self.start + emissions[:, 0]
        history = []
        for t in range(1, steps):
            nxt = scores.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1)
            best, idx = nxt.max(dim=1)  # best previous tag for each current tag
            history.append(idx)
            scores = torch.where(mask[:, t].unsqueeze(1), best, scores)
        last_tag = (scores + self.end).argmax(dim=1)
        out = torch.zeros(batch, steps, dtype=torch.long, device=emissions.device)
        cur = last_tag
        for t in range(steps - 1, -1, -1):
            cur = torch.where(lengths - 1 == t, last_tag, cur)
            out[:, t] = cur
            if t > 0:
                prev = history[t - 1].gather(1, cur.unsqueeze(1)).squeeze(1)
                cur = torch.where(lengths - 1 >= t, prev, cur)
        return out.masked_fill(~mask, 0)
