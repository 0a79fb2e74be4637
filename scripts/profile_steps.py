#!/usr/bin/env python
"""Per-step cost of `jaxmlp.fit` on W1 (digits 64-128-10) and W4 (car sensors 8-64-2, 100,000
rows): compile seconds and microseconds per optimizer step, best of 3 runs; then the step's
floor, the divergence guard, the weight-gradient layouts and W2's products one by one in
float32 and bfloat16 ("Where the time went" in `git show 77c33ef:BENCHMARKS.md`).

    python scripts/profile_steps.py
"""
import time
import warnings

import jax
import jax.numpy as jnp

import jaxmlp as jm
from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
from jaxmlp.data import load_splits, make_car_sensor, make_splits
from jaxmlp.training import fast_jit


def measure(name, splits, model, train, reps=3):
    best, compile_s = float("inf"), None
    for r in range(reps):
        _, h = jm.fit(splits, model=model, train=train.replace(seed=r))
        compile_s = h["final"]["compile_s"] if compile_s is None else compile_s
        best = min(best, h["final"]["train_s"])
    steps = h["final"]["epochs_run"] * -(-len(splits.X_train) // train.batch_size)
    print(f"{name}: compile {compile_s:.2f} s, train {best:.3f} s, {best / steps * 1e6:.1f} us/step, "
          f"final train loss {h['final']['train_loss']:.5f}")


def floor(n_batches=14, B=128, reps=5):
    """A bare `lax.scan` SGD loop over pre-batched data with W1's shapes (64-128-10 tanh, CE):
    no optimizer, schedule, guard, gather or metrics — the per-step floor of XLA:CPU here."""
    X = jax.random.normal(jax.random.PRNGKey(0), (n_batches, B, 64))
    Y = jax.random.randint(jax.random.PRNGKey(1), (n_batches, B), 0, 10)
    p0 = jm.init_mlp(jax.random.PRNGKey(2), [64, 128, 10])

    def step(p, xy):
        loss, g = jax.value_and_grad(jm.batch_loss)(p, *xy, activation="tanh", loss="ce")
        return jax.tree.map(lambda a, b: a - 0.1 * b, p, g), loss
    run = jax.jit(lambda p: jax.lax.scan(lambda c, _: (jax.lax.scan(step, c, (X, Y))[0], None),
                                         p, None, length=100)[0])
    jax.block_until_ready(run(p0))
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(run(p0))
        best = min(best, time.perf_counter() - t)
    print(f"floor (bare lax.scan SGD, W1 shapes): {best / (100 * n_batches) * 1e6:.1f} us/step")


def repeated_fits(n=4):
    """The W1 benchmark's fit (digits train split, 1,258 rows) n times in one process: the first
    fit after a compile pays XLA's one-time first-execution cost."""
    s = load_splits(DataConfig(dataset="digits"))
    times = []
    for _ in range(n):
        _, h = jm.fit((s.X_train, s.y_train), model=ModelConfig(hidden=(128,)),
                      train=TrainConfig(epochs=100, lr=0.1, batch_size=128, seed=0))
        times.append(h["final"]["train_s"])
    print("W1 benchmark fit repeated in one process, train s: " + ", ".join(f"{t:.4f}" for t in times))


def guard_cost(reps=3):
    """W1's per-step cost with jaxmlp's step (unguarded steps, one divergence check per epoch),
    with the earlier design's per-step guard (finite-check and select of every parameter after
    every step, same Optax update), and with a bare SGD update instead of Optax."""
    from jaxmlp.training import compile as C, metrics as M, program as P
    s = load_splits(DataConfig(dataset="digits", val_fraction=0.0, test_fraction=0.0))
    original = P.train_step

    def per_step_guard(spec, state, hp, xb, yb, wb):
        new, loss, lr = original(spec, state, hp, xb, yb, wb)
        ok = jnp.isfinite(loss) & P._all_finite(new["params"])
        keep = lambda a, b: jax.tree.map(lambda u, v: jnp.where(ok, u, v), a, b)
        return dict(new, params=keep(new["params"], state["params"]),
                    opt_state=keep(new["opt_state"], state["opt_state"])), loss, lr

    def bare_sgd(spec, state, hp, xb, yb, wb):
        params = state["params"]
        loss, grads = P._grad_fn(spec)(params, xb, yb, weights=wb, **M.loss_kwargs(spec, hp))
        return dict(state, params=jax.tree.map(lambda p, g: p - hp["lr"] * g, params, grads),
                    step=state["step"] + 1), loss, hp["lr"]
    try:
        for name, step in (("jaxmlp (epoch-level guard)", original),
                           ("per-step guard (earlier design)", per_step_guard),
                           ("bare SGD, epoch-level guard", bare_sgd)):
            P.train_step = step  # the chunk calls program.train_step at trace time
            C._EXECUTABLES.clear()
            C.jit_chunk.cache_clear()
            best = min(jm.fit(s, model=ModelConfig(hidden=(128,)),
                              train=TrainConfig(epochs=100, seed=r))[1]["final"]["train_s"]
                       for r in range(reps))
            print(f"W1 step, {name}: {best / 1500 * 1e6:.1f} us/step")
    finally:
        P.train_step = original
        C._EXECUTABLES.clear()
        C.jit_chunk.cache_clear()


def _best_us(f, *args, runs=3, calls=1, per=1):
    """Microseconds per call (divided by ``per``: steps inside one call) of ``f`` compiled as
    the trainer compiles, best of ``runs`` timings of ``calls`` calls."""
    c = fast_jit(f).lower(*args).compile()
    jax.block_until_ready(c(*args))
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(calls):
            out = c(*args)
        jax.block_until_ready(out)
        ts.append((time.perf_counter() - t0) / calls)
    return min(ts) * 1e6 / per


def weight_grad_products(S=300, B=128):
    """Microseconds of one weight-gradient product x^T g (x: (B, fan_in), g: (B, fan_out)) in
    a scan, as XLA:CPU's own transposed-operand dot and with x^T materialised
    (``jaxmlp.nn.transposed``): where ``jaxmlp.nn.MATERIALISE_MAX`` comes from."""
    from jaxmlp.nn import transposed, weight_gradient
    best = lambda f, *args: _best_us(f, *args, per=S)
    print("weight gradient x^T g, B = 128 (us): fan_in x fan_out, XLA's dot, x^T materialised, "
          "jaxmlp's rule (nn.weight_gradient)")
    for a, b in [(64, 128), (128, 10), (128, 128), (512, 10), (256, 256), (64, 1024), (512, 512),
                 (784, 512)]:
        X = jax.random.normal(jax.random.PRNGKey(0), (S, B, a))
        G = jax.random.normal(jax.random.PRNGKey(1), (B, b))

        def plain(X, G):
            return jax.lax.scan(lambda c, x: (c + x.T @ (G + c[0, 0]), None), jnp.zeros((a, b)), X)[0]

        def materialised(X, G):
            return jax.lax.scan(lambda c, x: (c + transposed(x) @ (G + c[0, 0]), None),
                                jnp.zeros((a, b)), X)[0]
        def rule(X, G):
            return jax.lax.scan(lambda c, x: (c + weight_gradient(x, G + c[0, 0]), None),
                                jnp.zeros((a, b)), X)[0]
        print(f"  {a:4d} x {b:4d} ({a * b:6d}): {best(plain, X, G):7.1f}  "
              f"{best(materialised, X, G):7.1f}  {best(rule, X, G):7.1f}")


def w2_products(reps=300):
    """W2's matrix products (784-512-512-10, B = 128) one at a time, in microseconds (best of 5
    runs of ``reps`` calls): the float32 products a step needs, whose sum bounds the step from
    below, and the same products with bfloat16 operands accumulating in float32."""
    from jax import lax
    f32, bf16 = jnp.float32, jnp.bfloat16

    best = lambda f, *args: _best_us(f, *args, runs=5, calls=reps)

    def dot(a, b, dims):
        return lax.dot_general(a, b, (dims, ((), ())), preferred_element_type=f32)
    k = iter(jax.random.split(jax.random.PRNGKey(0), 5))
    x, h, g = (jax.random.normal(next(k), s) for s in ((128, 784), (128, 512), (128, 512)))
    W1, W2 = (jax.random.normal(next(k), s) for s in ((784, 512), (512, 512)))
    NN, NT, TN = ((1,), (0,)), ((1,), (1,)), ((0,), (0,))
    products = [("forward x W1", x, W1, NN), ("forward h W2", h, W2, NN),
                ("input gradient g W2^T", g, W2, NT), ("weight gradient x^T g", x, g, TN),
                ("weight gradient h^T g", h, g, TN)]
    print("W2's products, B = 128 (us; GFLOP/s): float32 | bfloat16 operands given | "
          "bfloat16 cast in the program")
    total = 0.0
    for name, a, b, dims in products:
        flop = 2 * a.size * b.shape[1 - dims[1][0]]
        t32 = best(lambda a, b, dims=dims: dot(a, b, dims), a, b)
        t16 = best(lambda a, b, dims=dims: dot(a, b, dims), a.astype(bf16), b.astype(bf16))
        tc = best(lambda a, b, dims=dims: dot(a.astype(bf16), b.astype(bf16), dims), a, b)
        total += t32
        print(f"  {name:24s} {t32:6.1f} ({flop / t32 / 1e3:4.0f}) | {t16:6.1f} ({flop / t16 / 1e3:5.0f})"
              f" | {tc:6.1f} ({flop / tc / 1e3:5.0f})")
    print(f"  sum of the float32 products: {total:.0f} us per step")


def w2_compute_dtypes(reps=2):
    """W2 (teacher 200,000 x 784, 784-512-512-10, batch 128, one epoch) trained by ``fit`` with
    float32 and with bfloat16 matmuls (``compute_dtype``): train seconds, best of ``reps``."""
    from jaxmlp.data import make_teacher
    ds = make_teacher(200_000, 784, 10)
    for dtype in ("float32", "bfloat16"):
        best = min(jm.fit((ds.X, ds.y), model=ModelConfig(hidden=(512, 512)),
                          train=TrainConfig(epochs=1, lr=0.1, batch_size=128, compute_dtype=dtype)
                          )[1]["final"]["train_s"] for _ in range(reps))
        print(f"W2 one epoch, compute_dtype={dtype}: train {best:.3f} s")


def main():
    warnings.simplefilter("ignore")
    w1 = load_splits(DataConfig(dataset="digits", val_fraction=0.0, test_fraction=0.0))
    w4 = make_splits(make_car_sensor(100_000), DataConfig(dataset="car_sensor", val_fraction=0.0,
                                                          test_fraction=0.0))
    measure("W1", w1, ModelConfig(hidden=(128,)), TrainConfig(epochs=100, lr=0.1, batch_size=128))
    measure("W4", w4, ModelConfig(hidden=(64,)), TrainConfig(epochs=10, lr=0.1, batch_size=128, loss="mse"))
    floor()
    repeated_fits()
    guard_cost()
    weight_grad_products()
    w2_products()
    w2_compute_dtypes()


if __name__ == "__main__":
    main()
