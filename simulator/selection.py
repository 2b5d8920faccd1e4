"""Choosing and ordering records for readByQuery, readMore, query and get_list without scanning.

Generated records are described by RECORDNO intervals (from ``filters.analyse``); stored records
(overrides, created records, real users) are few and loaded with one query, then merged in order.
Only a condition the intervals cannot decide exactly makes the simulator look at generated records
one by one, and a keyset page (readMore) looks only as far as it needs.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import Any

from simulator.filters import Intervals, Node, _typed, analyse, compile_predicate, fields_of, intersect
from simulator.models import SimCompany
from simulator.records import Gen, ObjectDef, gen_for, parse_ts, stored_records

Record = dict[str, str]


class IntervalSeq:
    """The generated RECORDNOs in ``intervals`` minus ``excluded``, in order, addressable by position."""

    def __init__(self, intervals: Intervals, excluded: list[int]) -> None:
        self.intervals = intervals
        self.starts = [lo for lo, _ in intervals]
        self.cumulative: list[int] = []
        total = 0
        for lo, hi in intervals:
            self.cumulative.append(total)
            total += hi - lo + 1
        self.raw_total = total
        self.excluded = [r for r in excluded if self._contains(r)]

    def _contains(self, r: int) -> bool:
        k = bisect.bisect_right(self.starts, r) - 1
        return k >= 0 and r <= self.intervals[k][1]

    def _raw_rank(self, r: int) -> int:
        k = bisect.bisect_right(self.starts, r) - 1
        if k < 0:
            return 0
        lo, hi = self.intervals[k]
        return self.cumulative[k] + min(r, hi + 1) - lo

    def count(self) -> int:
        return self.raw_total - len(self.excluded)

    def rank(self, r: int) -> int:
        """How many members are smaller than r."""
        return self._raw_rank(r) - bisect.bisect_left(self.excluded, r)

    def iter_from_recordno(self, r: int) -> Iterator[int]:
        excluded = set(self.excluded[bisect.bisect_left(self.excluded, r) :])
        k = max(0, bisect.bisect_right(self.starts, r) - 1)
        for lo, hi in self.intervals[k:]:
            for value in range(max(lo, r), hi + 1):
                if value not in excluded:
                    yield value

    def iter_from_index(self, j: int) -> Iterator[int]:
        if j >= self.count():
            return iter(())
        # Smallest r whose rank + 1 exceeds j, i.e. the j-th member.
        lo, hi = 1, self.intervals[-1][1]
        while lo < hi:
            mid = (lo + hi) // 2
            if self.rank(mid + 1) > j:
                hi = mid
            else:
                lo = mid + 1
        return self.iter_from_recordno(lo)


class ListSeq:
    """An explicit sorted list of generated RECORDNOs (after a scan), with the same interface."""

    def __init__(self, values: list[int]) -> None:
        self.values = values

    def count(self) -> int:
        return len(self.values)

    def rank(self, r: int) -> int:
        return bisect.bisect_left(self.values, r)

    def iter_from_recordno(self, r: int) -> Iterator[int]:
        return iter(self.values[bisect.bisect_left(self.values, r) :])

    def iter_from_index(self, j: int) -> Iterator[int]:
        return iter(self.values[j:])


class Selection:
    """The records of one object matching a filter, as of now (optionally capped at ``max_recordno``)."""

    def __init__(
        self,
        company: SimCompany,
        obj: ObjectDef,
        node: Node | None,
        *,
        caseinsensitive: bool = False,
        max_recordno: int | None = None,
        fields: Iterable[str] = (),
    ) -> None:
        self.obj = obj
        self.gen: Gen = gen_for(company, obj)
        self.predicate = compile_predicate(node, obj, caseinsensitive)
        # Fields outside the generated core are computed only when the request names one of them.
        self.complete = obj.needs_completion(set(fields) | fields_of(node))
        stored, deleted = stored_records(company, obj)
        if self.complete:
            for record in stored.values():
                obj.complete(self.gen, record)
        excluded = sorted(r for r in set(stored) | deleted if r <= self.gen.size)
        self.extras = {
            r: rec for r, rec in stored.items() if (max_recordno is None or r <= max_recordno) and self.predicate(rec)
        }
        self.extra_keys = sorted(self.extras)
        self.max_recordno = max(self.gen.size, max(stored, default=0), max(deleted, default=0))
        must, may = analyse(node, self.gen)
        self.exact = must == may
        self.must, self.may, self.excluded = must, may, excluded
        self._seq: IntervalSeq | ListSeq | None = IntervalSeq(must, excluded) if self.exact else None

    def generated(self, r: int) -> Record:
        if self.complete:
            return self.obj.complete(self.gen, self.obj.generate(self.gen, r))
        return self.obj.generate(self.gen, r)

    def record(self, r: int) -> Record:
        return self.extras[r] if r in self.extras else self.generated(r)

    def seq(self) -> IntervalSeq | ListSeq:
        """Generated members; a condition the intervals cannot decide is evaluated here, once."""
        if self._seq is None:
            candidates = IntervalSeq(self.may, self.excluded)
            self._seq = ListSeq([r for r in candidates.iter_from_recordno(1) if self.predicate(self.generated(r))])
        return self._seq

    def total(self) -> int:
        return self.seq().count() + len(self.extras)

    def _generated_after(self, last: int) -> Iterator[int]:
        if self._seq is not None:
            yield from self._seq.iter_from_recordno(last + 1)
            return
        # Keyset page with an undecided condition: test only as many records as the page needs.
        for r in IntervalSeq(self.may, self.excluded).iter_from_recordno(last + 1):
            if self.predicate(self.generated(r)):
                yield r

    def page_after(self, last: int, size: int) -> list[Record]:
        """Up to ``size`` records with RECORDNO > last, in RECORDNO order (readByQuery / readMore)."""
        extras = self.extra_keys[bisect.bisect_right(self.extra_keys, last) :]
        out: list[Record] = []
        e = 0
        for r in self._generated_after(last):
            while e < len(extras) and extras[e] < r and len(out) < size:
                out.append(self.extras[extras[e]])
                e += 1
            if len(out) >= size:
                return out
            out.append(self.generated(r))
            if len(out) >= size:
                return out
        while e < len(extras) and len(out) < size:
            out.append(self.extras[extras[e]])
            e += 1
        return out

    # --- Ordered pages by offset (query) -----------------------------------------------------
    def page_by_offset(self, order: list[tuple[str, bool]], offset: int, size: int) -> list[Record]:
        """Records [offset, offset + size) in the requested order."""
        mode = order_mode(order)
        if mode is None:
            return self._general_page(order, offset, size)
        seq = self.seq()
        gen = self.gen
        if mode == "recordno":
            keyed = [((r,), r) for r in self.extra_keys]

            def rank(key: tuple) -> int:
                return seq.rank(key[0])
        else:
            keyed = sorted(((parse_ts(rec["WHENMODIFIED"]) or 0, r), r) for r, rec in self.extras.items())

            def rank(key: tuple) -> int:
                stamp, r = key
                # Generated records before (stamp, r): all older ones plus same-second ones with lower r.
                return seq.rank(max(gen.first_ge(stamp), min(gen.first_gt(stamp), r)))

        positions = [rank(key) + k for k, (key, _) in enumerate(keyed)]
        m = bisect.bisect_left(positions, offset)
        generated = seq.iter_from_index(offset - m)
        out: list[Record] = []
        position = offset
        while len(out) < size:
            if m < len(keyed) and positions[m] == position:
                out.append(self.extras[keyed[m][1]])
                m += 1
            else:
                r = next(generated, None)
                if r is None:
                    break
                out.append(self.generated(r))
            position += 1
        return out

    def _general_page(self, order: list[tuple[str, bool]], offset: int, size: int) -> list[Record]:
        records = [self.generated(r) for r in self.seq().iter_from_index(0)] + list(self.extras.values())
        # Stable sorts from the last key to the first give a multi-key order with mixed directions.
        records.sort(key=lambda rec: int(rec["RECORDNO"]))
        for field, ascending in reversed(order):
            records.sort(key=sort_key(self.obj, field), reverse=not ascending)
        return records[offset : offset + size]


def sort_key(obj: ObjectDef, field: str) -> Any:
    convert = _typed(obj.type_of(field))

    def key(record: Record) -> tuple:
        raw = record.get(field, "")
        value = convert(raw) if raw else None
        # Nulls first; values of mixed types compare as text.
        return (0, "") if value is None else (1, value) if not isinstance(value, str) else (2, value)

    return key


def order_mode(order: list[tuple[str, bool]]) -> str | None:
    """'recordno' or 'wm' when the order follows generation (cheap), else None (sort everything)."""
    if not order or order == [("RECORDNO", True)]:
        return "recordno"
    if order in ([("WHENMODIFIED", True)], [("WHENMODIFIED", True), ("RECORDNO", True)]):
        return "wm"
    return None


__all__ = ["Selection", "IntervalSeq", "ListSeq", "intersect"]
