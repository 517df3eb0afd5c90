"""Struct-of-arrays storage of the tracker's tracks (one row per track). numpy only."""

from __future__ import annotations

import numpy as np


class TrackStore:
    """Row-aligned arrays; rows are appended for new tracks and removed for forgotten ones.

    ids (N,) int64; mean (N, 8) and cov (N, 8, 8) Kalman state; hits (N,) matched detections;
    confirmed / matched (this frame) / lost (unmatched last update) (N,) bool; last_seen (N,)
    timestamp of the last match; scores (N,) last matched score; class_ids (N,) the current
    majority class with vote counter class_votes (N,) (Boyer-Moore majority vote: O(1) per
    track, returns the majority class whenever one class has more than half of the votes);
    first_box (N, 4) the box of the detection that started the track, or the earliest box on its
    path that no track claimed (Tracker._trace_births), or back-dated for a slow detector
    (Tracker._back_date_births).
    """

    def __init__(self) -> None:
        self.ids = np.zeros(0, np.int64)
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.hits = np.zeros(0, np.int64)
        self.confirmed = np.zeros(0, bool)
        self.matched = np.zeros(0, bool)
        self.lost = np.zeros(0, bool)
        self.last_seen = np.zeros(0)
        self.scores = np.zeros(0, np.float32)
        self.class_ids = np.zeros(0, np.int64)
        self.class_votes = np.zeros(0, np.int64)
        self.first_box = np.zeros((0, 4), np.float32)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def append(
        self,
        ids: np.ndarray,
        mean: np.ndarray,
        cov: np.ndarray,
        scores: np.ndarray,
        class_ids: np.ndarray,
        timestamp: float,
        first_box: np.ndarray,
    ) -> None:
        n = ids.shape[0]
        self.ids = np.concatenate([self.ids, ids])
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.confirmed = np.concatenate([self.confirmed, np.zeros(n, bool)])
        self.matched = np.concatenate([self.matched, np.zeros(n, bool)])
        self.lost = np.concatenate([self.lost, np.zeros(n, bool)])
        self.last_seen = np.concatenate([self.last_seen, np.full(n, timestamp)])
        self.scores = np.concatenate([self.scores, scores.astype(np.float32)])
        self.class_ids = np.concatenate([self.class_ids, class_ids.astype(np.int64)])
        self.class_votes = np.concatenate([self.class_votes, np.ones(n, np.int64)])
        self.first_box = np.concatenate([self.first_box, np.asarray(first_box, np.float32).reshape(n, 4)])

    def remove(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` is True."""
        if not mask.any():
            return
        keep = ~mask
        for name in (
            "ids",
            "mean",
            "cov",
            "hits",
            "confirmed",
            "matched",
            "lost",
            "last_seen",
            "scores",
            "class_ids",
            "class_votes",
            "first_box",
        ):
            setattr(self, name, getattr(self, name)[keep])

    def vote_class(self, idx: np.ndarray, observed: np.ndarray) -> None:
        """One class vote per matched track (rows ``idx``, classes ``observed``)."""
        same = self.class_ids[idx] == observed
        votes = self.class_votes[idx] + np.where(same, 1, -1)
        flip = votes <= 0  # the candidate ran out of votes: the newly observed class takes over
        self.class_ids[idx] = np.where(flip, observed, self.class_ids[idx])
        self.class_votes[idx] = np.where(flip, 1, votes)
