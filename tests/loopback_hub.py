"""A model and dataset hub on 127.0.0.1, for tests: the real huggingface_hub / transformers / datasets clients
download from it through ``HF_ENDPOINT``; nothing in the project is mocked.

It speaks the part of the Hugging Face hub's HTTP API that those downloads use:

- ``HEAD``/``GET /<repo>/resolve/<rev>/<path>`` (models) and ``/datasets/<repo>/resolve/<rev>/<path>``, with the
  hub's headers (``X-Repo-Commit``, ``ETag``, ``Content-Length``), byte ranges, and the hub's error codes
  (``X-Error-Code: RepoNotFound | EntryNotFound | RevisionNotFound``);
- ``GET /api/{models,datasets}/<repo>[/revision/<rev>]`` (the repo's commit and files with sizes),
  ``GET /api/.../tree/<rev>[/<path>]`` and ``POST /api/.../paths-info/<rev>`` (what ``datasets`` lists);
- ``POST /_control`` (JSON): faults for the next requests, so a test or a person can interrupt a download;
  ``GET /_log``: every request so far.

Repositories are folders: ``<root>/models/<repo id>/...`` and ``<root>/datasets/<repo id>/...``; ``build_repos``
writes the ones the project downloads (a tiny RobertaForMaskedLM in roberta-large's file layout under
``roberta-large`` and ``FacebookAI/roberta-large``; the tasks' datasets under their real ids, configs, splits and
schemas, the SuperGLUE test splits unlabelled as on the hub). Faults (``Faults``): ``delay`` seconds before every
answer, ``rate`` bytes/s for file bodies, ``cut``/``stall`` {file name: byte count}: close the connection, or stop
sending and hold it open, after that many bytes of that file's body (once each, or every time with ``repeat``). ``Proxy`` is an HTTP forward proxy on
127.0.0.1 that sends every request, whatever host it names, to the hub: an endpoint whose host name does not
resolve is then reachable only through ``HTTP_PROXY``.

Run it by hand: ``python tests/loopback_hub.py --root /tmp/hub [--port 8765] [--proxy-port 8766]
[--weights-mb 50] [--rate 5e6]`` (builds the repos if the folder is empty, serves until Ctrl-C). Only 127.0.0.1 is
ever bound or contacted.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import parse_qs, unquote, urlsplit

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent
FIXTURES = ROOT / "fixtures"
BUNDLED_CB = ROOT.parent / "lit_infoprompt" / "tasks" / "data" / "cb"
MODEL_IDS = ("roberta-large", "FacebookAI/roberta-large")
DATE = "2024-02-19T12:00:00.000Z"


# --------------------------------------------------------------------------------------------- the repositories

def _tokenizer_files(source: Path, out: Path) -> None:
    """roberta-large's tokenizer layout (vocab.json, merges.txt, tokenizer.json, no tokenizer_config.json) from a
    committed tiny byte-level BPE tokenizer."""
    spec = json.loads((source / "tokenizer.json").read_text())
    (out / "tokenizer.json").write_text(json.dumps(spec))
    (out / "vocab.json").write_text(json.dumps(spec["model"]["vocab"]))
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def build_model_repo(out: Path, weights_mb: float = 0.0) -> Path:
    """A tiny random RobertaForMaskedLM (tests/fixtures/models/tiny-roberta) in roberta-large's file layout, with
    the formats a download must skip (pytorch_model.bin, tf_model.h5, flax_model.msgpack, rust_model.ot) beside
    model.safetensors. ``weights_mb``: pad model.safetensors with a never-read tensor to about that size (to watch a
    progress bar, or to interrupt a download by hand)."""
    source = FIXTURES / "models" / "tiny-roberta"
    out.mkdir(parents=True, exist_ok=True)
    import torch
    from safetensors.torch import load_file, save_file

    config = json.loads((source / "config.json").read_text())
    tensors = load_file(source / "model.safetensors")
    key = "roberta.embeddings.position_embeddings.weight"  # roberta-large's 514 positions (512 usable)
    generator = torch.Generator().manual_seed(0)
    extra = 0.02 * torch.randn(514 - tensors[key].shape[0], tensors[key].shape[1], generator=generator)
    tensors[key] = torch.cat([tensors[key], extra])
    config["max_position_embeddings"] = 514
    (out / "config.json").write_text(json.dumps(config, indent=2))
    _tokenizer_files(source, out)
    if weights_mb > 0:
        tensors["padding.unused"] = torch.zeros(int(weights_mb * 2 ** 20 / 4))
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    for name in ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "rust_model.ot"):
        (out / name).write_bytes(b"not to be downloaded: " + name.encode() * 100)
    (out / "dict.txt").write_text("50264 1\n")
    return out


SUPERGLUE = {  # config -> (fixture folder, feature columns in the hub's order, class names in the hub's order)
    "cb": ("CB", ["premise", "hypothesis", "idx"], ["entailment", "contradiction", "neutral"]),
    "rte": ("RTE", ["premise", "hypothesis", "idx"], ["entailment", "not_entailment"]),
    "boolq": ("BoolQ", ["question", "passage", "idx"], ["False", "True"]),
    "wic": ("WiC", ["word", "sentence1", "sentence2", "start1", "start2", "end1", "end2", "idx"], ["False", "True"]),
    "copa": ("COPA", ["premise", "choice1", "choice2", "question", "idx"], ["choice1", "choice2"]),
}
GLUE = {  # config -> (fixture folder, text columns, class names)
    "sst2": ("SST-2", ["sentence"], ["negative", "positive"]),
    "mrpc": ("MRPC", ["sentence1", "sentence2"], ["not_equivalent", "equivalent"]),
    "cola": ("CoLA", ["sentence"], ["unacceptable", "acceptable"]),
}


def _superglue_label(raw, names: List[str]) -> int:
    if isinstance(raw, bool):
        return int(raw)  # BoolQ, WiC: false/true = class 0/1
    if isinstance(raw, int):
        return raw  # COPA
    return names.index(raw)


def _write_parquet(rows: List[dict], columns: List[str], names: List[str], path: Path, label: str = "label") -> None:
    from datasets import ClassLabel, Dataset, Features, Value

    kinds = {"idx": Value("int32"), "start1": Value("int32"), "start2": Value("int32"), "end1": Value("int32"),
             "end2": Value("int32")}
    features = Features({**{c: kinds.get(c, Value("string")) for c in columns}, label: ClassLabel(names=names)})
    data = {c: [r[c] for r in rows] for c in columns}
    data[label] = [r[label] for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    Dataset.from_dict(data, features=features).to_parquet(str(path))


def _card(configs: Dict[str, List[str]]) -> str:
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {config}/{split}-00000-of-00001.parquet"]
    return "\n".join(lines + ["---", "", "Made for tests from small fixtures; the real repository's layout.", ""])


def _jsonl(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build_dataset_repos(root: Path) -> None:
    """aps/super_glue (cb, rte, boolq, wic, copa), nyu-mll/glue (sst2, mrpc, cola) and
    SemEvalWorkshop/sem_eval_2010_task_8, from the test fixtures (CB: the copy bundled with the package), with the
    hub cards' features and an unlabelled (-1) test split where the hub has one."""
    repo = root / "aps" / "super_glue"
    for config, (folder, columns, names) in SUPERGLUE.items():
        where = BUNDLED_CB if config == "cb" else FIXTURES / "superglue" / folder
        val = _jsonl(where / "val.jsonl")
        train = _jsonl(where / "train.jsonl") if (where / "train.jsonl").is_file() else val
        for split, rows in (("train", train), ("validation", val), ("test", val)):
            out = [{**{c: r.get(c, i if c == "idx" else "") for c in columns},
                    "label": -1 if split == "test" else _superglue_label(r["label"], names)}
                   for i, r in enumerate(rows)]
            _write_parquet(out, columns, names, repo / config / f"{split}-00000-of-00001.parquet")
    (repo / "README.md").write_text(_card({c: ["train", "validation", "test"] for c in SUPERGLUE}))

    repo = root / "nyu-mll" / "glue"
    for config, (folder, columns, names) in GLUE.items():
        for split, name in (("train", "train.tsv"), ("validation", "dev.tsv"), ("test", "dev.tsv")):
            rows = []
            for number, line in enumerate((FIXTURES / "glue" / folder / name).read_text("utf-8-sig").splitlines()):
                cells = line.split("\t")
                if config == "sst2" and number == 0 or config == "mrpc" and number == 0 or not line.strip():
                    continue
                text = {"sst2": lambda c: {"sentence": c[0]}, "cola": lambda c: {"sentence": c[3]},
                        "mrpc": lambda c: {"sentence1": c[3], "sentence2": c[4]}}[config](cells)
                label = int(cells[{"sst2": 1, "cola": 1, "mrpc": 0}[config]])
                rows.append({**text, "idx": len(rows), "label": -1 if split == "test" else label})
            _write_parquet(rows, [*columns, "idx"], names, repo / config / f"{split}-00000-of-00001.parquet")
    (repo / "README.md").write_text(_card({c: ["train", "validation", "test"] for c in GLUE}))

    repo = root / "SemEvalWorkshop" / "sem_eval_2010_task_8"
    names = _semeval_names()
    for split, name in (("train", "TRAIN_FILE.TXT"), ("test", "TEST_FILE_FULL.TXT")):
        blocks = [b for b in (FIXTURES / "semeval2010_task8" / name).read_text().split("\n\n") if b.strip()]
        rows = []
        for block in blocks:
            first, label = block.strip().split("\n")[:2]
            rows.append({"sentence": first.split("\t", 1)[1].strip('"'), "relation": names.index(label.strip())})
        _write_parquet(rows, ["sentence"], names, repo / "default" / f"{split}-00000-of-00001.parquet",
                       label="relation")
    (repo / "README.md").write_text(_card({"default": ["train", "test"]}))


def _semeval_names() -> List[str]:
    from omegaconf import OmegaConf

    return list(OmegaConf.load(ROOT.parent / "conf" / "task" / "semeval.yaml").labels)


def build_repos(root: Path, weights_mb: float = 0.0) -> Path:
    """Every repository the project downloads, under ``root`` (models/, datasets/)."""
    for name in MODEL_IDS:
        build_model_repo(root / "models" / name, weights_mb)
    build_dataset_repos(root / "datasets")
    return root


# --------------------------------------------------------------------------------------------------- the server

@dataclass
class Faults:
    delay: float = 0.0  # seconds before every answer
    rate: float = 0.0  # bytes per second of a file body (0: as fast as it goes)
    cut: Dict[str, int] = field(default_factory=dict)  # file name -> close the connection after this many bytes
    stall: Dict[str, int] = field(default_factory=dict)  # file name -> stop sending after this many bytes
    repeat: bool = False  # cut/stall every request of the file (not only the first): a client's retries fail too

    def update(self, values: dict) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise KeyError(key)
            setattr(self, key, value)


class Repo:
    """One repository folder: its files, their sizes and sha256, and a commit id made from them."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
        self.sha256 = {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in self.files.items()}
        self.commit = hashlib.sha1("".join(self.sha256.values()).encode()).hexdigest()

    def entry(self, name: str) -> dict:
        size = self.files[name].stat().st_size
        return {"type": "file", "oid": self.sha256[name][:40], "size": size, "path": name,
                "lfs": {"oid": self.sha256[name], "size": size, "pointerSize": 134}}

    def directories(self, under: str) -> List[str]:
        found = set()
        for name in self.files:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                found.add("/".join(parts[:i]))
        return sorted(d for d in found if under == "" or d.startswith(under + "/"))


class Hub(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path, port: int = 0):
        super().__init__((HOST, port), Handler)
        self.root = Path(root)
        self.faults = Faults()
        self.log: List[tuple] = []  # (method, path) of every request
        self._repos: Dict[tuple, Optional[Repo]] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"

    def repo(self, kind: str, repo_id: str) -> Optional[Repo]:
        with self._lock:
            key = (kind, repo_id)
            if key not in self._repos:
                folder = self.root / kind / repo_id
                self._repos[key] = Repo(folder) if folder.is_dir() else None
            return self._repos[key]

    def downloads(self) -> List[str]:
        """The file bodies sent so far (GET of a resolve URL), as ``<repo>/<path>``."""
        return [path for method, path in self.log if method == "GET" and "/resolve/" in path]

    def start(self) -> "Hub":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Hub

    def log_message(self, *args) -> None:  # quiet: the hub keeps its own log
        pass

    # -- helpers
    def _send(self, status: int, body: bytes = b"", headers: Optional[dict] = None, head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _json(self, value, status: int = 200, head: bool = False) -> None:
        self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json"}, head)

    def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
        self._send(status, json.dumps({"error": message}).encode(),
                   {"Content-Type": "application/json", "X-Error-Code": code, "X-Error-Message": message}, head)

    def _route(self, head: bool = False) -> None:
        hub = self.server
        hub.log.append((self.command, self.path))
        if hub.faults.delay:
            time.sleep(hub.faults.delay)
        url = urlsplit(self.path)
        path = unquote(url.path).lstrip("/")
        if path.startswith("api/"):
            return self._api(path[4:], parse_qs(url.query), head)
        if "/resolve/" in path:
            return self._resolve(path, head)
        return self._error(404, "EntryNotFound", f"no route {url.path}", head)

    def _repo_or_error(self, kind: str, repo_id: str, revision: str, head: bool) -> Optional[Repo]:
        repo = self.server.repo(kind, repo_id)
        if repo is None:
            self._error(401, "RepoNotFound", f"Repository Not Found for url: {self.path}", head)
            return None
        if revision not in ("main", repo.commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return None
        return repo

    # -- file downloads
    def _resolve(self, path: str, head: bool) -> None:
        kind = "datasets" if path.startswith("datasets/") else "models"
        path = path[len("datasets/"):] if kind == "datasets" else path
        repo_id, _, rest = path.partition("/resolve/")
        revision, _, name = rest.partition("/")
        repo = self._repo_or_error(kind, repo_id, revision, head)
        if repo is None:
            return
        if name not in repo.files:
            return self._error(404, "EntryNotFound", f"{name} does not exist on {revision}", head)
        data = repo.files[name].read_bytes()
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{repo.sha256[name]}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start, status = 0, 200
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            first, _, last = ranged[6:].partition("-")
            start = int(first or 0)
            end = int(last) + 1 if last else len(data)
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
            data, status = data[start:end], 206
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self._body(Path(name).name, data)

    def _body(self, name: str, data: bytes) -> None:
        faults = self.server.faults
        limit = None
        for kind in ("cut", "stall"):
            if name in getattr(faults, kind):
                table = getattr(faults, kind)
                limit = (kind, table[name] if faults.repeat else table.pop(name))
        chunk = 64 * 1024
        sent = 0
        while sent < len(data):
            if limit and sent >= limit[1]:
                if limit[0] == "stall":
                    time.sleep(3600)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            piece = data[sent:sent + (min(chunk, limit[1] - sent) if limit else chunk)]
            try:
                self.wfile.write(piece)
            except (BrokenPipeError, ConnectionResetError):
                return
            sent += len(piece)
            if faults.rate:
                time.sleep(len(piece) / faults.rate)

    # -- the API
    def _api(self, path: str, query: dict, head: bool) -> None:
        kind, _, rest = path.partition("/")
        if kind not in ("models", "datasets"):
            return self._error(404, "EntryNotFound", f"no route /api/{path}", head)
        for marker in ("/tree/", "/paths-info/", "/revision/"):
            if marker in rest:
                repo_id, _, tail = rest.partition(marker)
                break
        else:
            repo_id, marker, tail = rest, "", ""
        revision, _, sub = tail.partition("/") if marker else ("main", "", "")
        repo = self._repo_or_error(kind, repo_id, revision, head)
        if repo is None:
            return
        if marker == "/tree/":
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            sub = sub.strip("/")
            entries = [repo.entry(n) for n in repo.files
                       if (sub == "" or n.startswith(sub + "/")) and (recursive or n.count("/") == sub.count("/") + (sub != ""))]
            dirs = [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in repo.directories(sub)
                    if recursive or d.count("/") == sub.count("/") + (sub != "")]
            if sub and sub not in repo.files and not dirs and not entries and sub not in repo.directories(""):
                return self._error(404, "EntryNotFound", f"{sub} does not exist", head)
            return self._json(dirs + entries, head=head)
        if marker == "/paths-info/":
            return self._json(self._paths_info(repo), head=head)
        siblings = [{"rfilename": n, "size": repo.files[n].stat().st_size, "blobId": repo.sha256[n][:40],
                     "lfs": {"sha256": repo.sha256[n], "size": repo.files[n].stat().st_size, "pointerSize": 134}}
                    for n in repo.files]
        info = {"_id": repo.commit[:24], "id": repo_id, "sha": repo.commit, "lastModified": DATE, "createdAt": DATE,
                "private": False, "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
                "siblings": siblings}
        if kind == "models":
            info.update(modelId=repo_id, library_name="transformers", pipeline_tag="fill-mask")
        else:
            info.update(cardData={}, description="")
        return self._json(info, head=head)

    def _paths_info(self, repo: Repo) -> list:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = json.loads(raw or "{}").get("paths", [])
        else:
            paths = parse_qs(raw).get("paths", [])
        paths = [paths] if isinstance(paths, str) else paths
        out = []
        for p in paths:
            p = p.strip("/")
            if p in repo.files:
                out.append(repo.entry(p))
            elif p in repo.directories(""):
                out.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": p})
        return out

    def _control(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            self.server.faults.update(json.loads(self.rfile.read(length) or b"{}"))
        except (KeyError, ValueError) as err:
            return self._json({"error": f"bad control: {err}"}, status=400)
        return self._json({"faults": self.server.faults.__dict__})

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's names
        self._route(head=True)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/_log":  # every request so far, for a person checking what a command downloaded
            return self._json(self.server.log)
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        if self.path == "/_control":
            return self._control()
        self._route()


# ------------------------------------------------------------------------------------------------------ the proxy

class Proxy(ThreadingHTTPServer):
    """A forward HTTP proxy on 127.0.0.1 that sends every request to the hub (whatever host the request names):
    the only way to the hub when HF_ENDPOINT names a host that does not resolve. ``log``: the URLs it forwarded."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, hub_port: int, port: int = 0):
        super().__init__((HOST, port), ProxyHandler)
        self.hub_port = hub_port
        self.log: List[str] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"

    def start(self) -> "Proxy":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Proxy

    def log_message(self, *args) -> None:
        pass

    def _forward(self) -> None:
        self.server.log.append(self.path)
        target = urlsplit(self.path)
        path = target.path + (f"?{target.query}" if target.query else "")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        upstream = http.client.HTTPConnection(HOST, self.server.hub_port, timeout=60)
        try:
            upstream.request(self.command, path or "/", body=body, headers=headers)
            answer = upstream.getresponse()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("connection", "transfer-encoding"):
                    self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                while True:
                    piece = answer.read(64 * 1024)
                    if not piece:
                        break
                    self.wfile.write(piece)
        except (OSError, http.client.HTTPException):
            self.close_connection = True
        finally:
            upstream.close()

    do_GET = do_HEAD = do_POST = _forward  # noqa: N815

    def do_CONNECT(self) -> None:  # noqa: N802 - the loopback hub speaks plain HTTP only
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="A model and dataset hub on 127.0.0.1 (tests/loopback_hub.py).")
    parser.add_argument("--root", required=True, help="the repositories' folder (built if empty)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--proxy-port", type=int, default=None, help="also start the loopback proxy")
    parser.add_argument("--weights-mb", type=float, default=0.0, help="pad model.safetensors to about this size")
    parser.add_argument("--rate", type=float, default=0.0, help="bytes/s for file bodies (0: unlimited)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "models").is_dir():
        build_repos(root, args.weights_mb)
    hub = Hub(root, args.port).start()
    hub.faults.rate = args.rate
    print(f"hub: HF_ENDPOINT={hub.url}", flush=True)
    if args.proxy_port is not None:
        proxy = Proxy(hub.server_address[1], args.proxy_port).start()
        print(f"proxy: HTTP_PROXY={proxy.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
