"""The SDK's own confidential work per unit, in-process (no network, no server): sealing a request,
opening an answer or a stream event and decoding what is inside, on the bench server's answers.
Process CPU, best of 9.

    python benchmarks/confidential_steps.py . new          # this tree
    python benchmarks/confidential_steps.py OLD_TREE base  # a checkout of 9007deb, its code path

`base` runs the steps as the SDK did before issue 23 (the whole request JSON decoded, the answer's
envelope decoded to str and opened with `ResponseKey.open`).
"""
# ruff: noqa
import json
import sys
import time
import timeit

tree, which = sys.argv[1], sys.argv[2]
sys.path.insert(0, tree)
import msgspec
from benchmarks.payloads import parse_model, render
from atoma_core.models import ChatCompletionResponse, ChatCompletionChunk, ConfidentialComputeResponse
from atoma_core.testing import SandboxNode
import atoma_core._crypto as K
def best(fn, number):
    return min(timeit.repeat(fn, number=number, repeat=9, timer=time.process_time)) / number * 1e6
node = SandboxNode()
REQ = json.dumps({"model": "bench:small", "messages": [{"role": "user", "content": "Say hello in one short sentence."}], "stream": False}).encode()
resp_dec = msgspec.json.Decoder(ChatCompletionResponse).decode
chunk_dec = msgspec.json.Decoder(ChatCompletionChunk).decode
env = msgspec.json.Decoder(ConfidentialComputeResponse).decode
enc = msgspec.json.Encoder().encode
if which == "base":
    def seal():
        request = msgspec.json.decode(REQ)
        sealed, key = K.seal_request(node.public_key, REQ, model=request["model"], stack_small_id=1, stream=request.get("stream"))
        return enc(sealed), key
    def open_answer(key, raw):
        e = env(raw)
        return resp_dec(key.open(e.ciphertext, e.nonce, e.response_hash))
    def decoder(key):
        def d(data):
            e = env(data)
            return chunk_dec(key.open(e.ciphertext, e.nonce, e.response_hash))
        return d
else:
    from atoma_funcs._confidential import _read_shape
    def seal():
        shape = _read_shape(REQ)
        return K.seal_body(node.public_key, REQ, model=shape.model, stack_small_id=1, stream=shape.stream)
    def open_answer(key, raw):
        return key.open_answer(raw, resp_dec)
    def decoder(key):
        return key.stream_decoder(chunk_dec)
body, key = seal()
nkey = node.open_request(body).key
out = {"seal (per attempt)": best(seal, 2000)}
for size in ("small", "body:100000", "body:1000000"):
    plain = render(parse_model("bench:" + size))
    raw = json.dumps(node.seal(nkey, plain)).encode()
    n = 2000 if size == "small" else 50 if "100000" == size[5:] else 5
    out[f"open {size} answer"] = best(lambda: open_answer(key, raw), n)
for model in ("bench:stream:2000:1:0", "bench:stream:1000:1:0:4096"):
    writes = render(parse_model(model))
    data = writes[len(writes) // 2].split(b"\n\n")[0][6:]
    events = [msgspec.json.encode(node.seal(nkey, data)) for _ in range(2000)]
    def run():
        d = decoder(key)
        for e in events: d(e)
    out[f"event {model}"] = best(run, 1) / len(events)
for k, v in out.items(): print(f"{which} {k:40s} {v:9.2f} us")
