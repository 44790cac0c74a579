"""A reader of bbolt files (go.etcd.io/bbolt), the embedded database step-ca keeps its records
in: what certificates it issued and which it revoked. Read-only and whole-file: the deploys
read a point-in-time copy the cert-manager made with step-ca paused.

The format, as bbolt writes it (little-endian on the architectures step-ca ships for): pages
of `page_size` bytes, each with a 16-byte header (id, flags, count, overflow); two meta pages
(0 and 1), the valid one with the higher transaction id naming the root bucket's page; branch
pages of (pos, ksize, pgid) elements and leaf pages of (flags, pos, ksize, vsize) elements,
each key and value at `pos` bytes after its element; a bucket is a leaf value flagged 1,
holding its root page id and sequence, and when the root is 0 the bucket's one page inline.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

MAGIC = 0xED0CDAED
_PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
_META = struct.Struct("<IIIIQQQQQQ")  # magic .. txid, checksum
_BRANCH = struct.Struct("<IIQ")  # pos, ksize, pgid
_LEAF = struct.Struct("<IIII")  # flags, pos, ksize, vsize
_BUCKET = struct.Struct("<QQ")  # root, sequence
_BRANCH_PAGE, _LEAF_PAGE, _META_PAGE = 0x01, 0x02, 0x04
_BUCKET_LEAF = 0x01


class BoltError(ValueError):
    """The file is not a bbolt database this reader understands (or it is torn)."""


def _fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


class BoltFile:
    """The buckets and key/value pairs of one bbolt file, from its bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        metas = []
        for page in (0, 1):
            meta = self._meta(page)
            if meta is not None:
                metas.append(meta)
        if not metas:
            raise BoltError("no valid meta page: not a bbolt database, or a torn copy")
        self.page_size, self.root, self.txid = max(metas, key=lambda m: m[2])

    def _meta(self, page: int) -> tuple[int, int, int] | None:
        # Page 0 sits at offset 0 and names the page size; page 1 follows at that size.
        size = 4096 if page == 0 else self._meta_size()
        start = page * size + _PAGE_HEADER.size
        if len(self.data) < start + _META.size:
            return None
        fields = _META.unpack_from(self.data, start)
        magic, version, page_size, _, root, _, _, _, txid, checksum = fields
        body = self.data[start : start + _META.size - 8]
        if magic != MAGIC or version != 2 or checksum != _fnv1a64(body):
            return None
        return page_size, root, txid

    def _meta_size(self) -> int:
        fields = _META.unpack_from(self.data, _PAGE_HEADER.size)
        return int(fields[2]) if fields[0] == MAGIC else 4096

    def _page(self, pgid: int) -> bytes:
        start = pgid * self.page_size
        if start + _PAGE_HEADER.size > len(self.data):
            raise BoltError(f"page {pgid} lies past the end of the file")
        overflow = _PAGE_HEADER.unpack_from(self.data, start)[3]
        return self.data[start : start + (overflow + 1) * self.page_size]

    def _walk(self, page: bytes) -> Iterator[tuple[int, bytes, bytes]]:
        """(flags, key, value) of every leaf element under `page`, in key order."""
        _, flags, count, _ = _PAGE_HEADER.unpack_from(page, 0)
        for index in range(count):
            at = _PAGE_HEADER.size + index * _LEAF.size
            if flags & _BRANCH_PAGE:
                pos, ksize, child = _BRANCH.unpack_from(page, at)
                yield from self._walk(self._page(child))
            elif flags & _LEAF_PAGE:
                element, pos, ksize, vsize = _LEAF.unpack_from(page, at)
                key = page[at + pos : at + pos + ksize]
                yield element, key, page[at + pos + ksize : at + pos + ksize + vsize]
            else:
                raise BoltError(f"unexpected page flags {flags:#x} in a tree")

    def _bucket_page(self, value: bytes) -> bytes:
        root, _ = _BUCKET.unpack_from(value, 0)
        return value[_BUCKET.size :] if root == 0 else self._page(root)

    def buckets(self) -> list[bytes]:
        """The names of the top-level buckets, in key order."""
        return [key for flags, key, _ in self._walk(self._page(self.root)) if flags & _BUCKET_LEAF]

    def items(self, bucket: bytes) -> Iterator[tuple[bytes, bytes]]:
        """The key/value pairs of the top-level bucket `bucket` (none if it does not exist)."""
        for flags, key, value in self._walk(self._page(self.root)):
            if key == bucket and flags & _BUCKET_LEAF:
                for inner, k, v in self._walk(self._bucket_page(value)):
                    if not inner & _BUCKET_LEAF:
                        yield k, v
                return
