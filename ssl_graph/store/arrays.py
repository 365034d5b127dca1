"""A store's zarr arrays (centroids, counts, weights, the parts' blocks): written with their
checksum manifests, checked against their commit before zarr reads them. zarr is imported only
when data is touched (planning never is). ``Store`` holds these methods (``store.py``)."""

from __future__ import annotations

from .paths import check_tree, guard


class StoreArrays:
    """Array methods of ``Store`` (which provides ``backend``, ``url``, ``written``,
    ``record`` and ``_trees_checked``)."""

    def write_array(self, key: str, data, chunks: tuple[int, ...] | None = None) -> dict:
        """Write an array (every chunk, even all-zero ones); returns its checksum manifest."""
        import zarr

        from .integrity import array_manifest

        if self.backend.link_target(key) is not None:  # replaced, never written through a link
            self.backend.delete(key)
        guard(self.backend, key)  # zarr writes the files itself: no link may lead it out
        if chunks is None:
            rows = max(1, min(len(data), max(1, (4 << 20) // max(1, data[:1].nbytes))))
            chunks = (rows, *data.shape[1:])
        # float frames compress by only ~15-20 % while zstd decoding caps reads near 0.5 GB/s:
        # store them raw (bulk reads ~3x faster); integer labels and counts keep zstd
        extra = {"compressors": None} if data.dtype.kind == "f" else {}
        zarr.create_array(
            store=self.url, name=key, data=data, chunks=chunks, overwrite=True, zarr_format=3,
            config={"write_empty_chunks": True}, **extra,
        )
        self.written[key] = array_manifest(self.backend, key, data.shape, data.dtype, chunks[0])
        return self.written[key]

    def write_rows(self, key: str, array, start: int, rows) -> None:
        """Grow a zarr array (at ``key``) to ``start + len(rows)`` rows and write them: the
        blocks of a part the ragged writer streams (one named store write each)."""
        array.resize((start + len(rows), *array.shape[1:]))
        array[start:start + len(rows)] = rows

    def arrays_of(self, key: str, record: dict | None) -> dict[str, dict]:
        """Manifests of a node's named arrays (centroids, ...) for its commit: the record's,
        updated by the writes made since (which are consumed)."""
        arrays = dict((record or {}).get("arrays") or {})
        for k in [k for k in self.written if k.startswith(f"{key}/")]:
            arrays[k.removeprefix(f"{key}/")] = self.written.pop(k)
        return arrays

    def damaged_arrays(self, key: str, record: dict | None, memo=None) -> str | None:
        """First problem of a node's named arrays that planning sees (``plan_problems``)."""
        from .integrity import plan_problems

        arrays = (record or {}).get("arrays") or {}
        since = self.committed_ns(key) if arrays else None
        for name, manifest in arrays.items():
            problems = plan_problems(self.backend, f"{key}/{name}", manifest, since, memo)
            if problems:
                return f"{self.url}/{key}/{name}/{problems[0]}; the node will be recomputed"
        return None

    def read_array(self, key: str):
        """Open a zarr array; a node's named array is first checked against its commit."""
        import zarr

        from .integrity import DamagedData, check_files

        guard(self.backend, key)  # zarr reads the files itself: no link may lead it out
        node, _, name = key.partition("/")[2].partition("/")
        node = f"nodes/{node}"
        manifest = ((self.record(node) or {}).get("arrays") or {}).get(name)
        if key.startswith("nodes/") and manifest is not None:
            problem = check_files(self.backend, key, manifest, list(manifest["files"]))
            if problem:
                rec = self.record(node) or {}
                raise DamagedData(f"node {rec.get('name', '?')!r} ({node}): {problem}; run "
                                  "`ssl-graph verify --repair` then `ssl-graph run` to recompute it")
        elif key not in self._trees_checked:  # no manifest (older stores): zarr reads alone
            check_tree(self.backend, key)
            self._trees_checked.add(key)
        return zarr.open_array(store=self.url, path=key, mode="r", zarr_format=3)
