"""Golden values for grad.rs::sgd_momentum_weight_decay_matches_independent_computation.

Three steps of torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01,
dampening=0, nesterov=False) as its documentation states the update, in
Python floats (f64):
    d = g + wd * p;  buf = d (first step) else momentum * buf + d;  p -= lr * buf
Run: python3 core/tests/golden/sgd_step.py
"""
p = [0.5, -1.0, 2.0]
grads = [[0.1, 0.2, -0.3], [0.05, -0.1, 0.2], [0.0, 0.3, 0.1]]
lr, mu, wd = 0.1, 0.9, 0.01
buf = [0.0] * 3
for step, g in enumerate(grads):
    for k in range(3):
        d = g[k] + wd * p[k]
        buf[k] = d if step == 0 else mu * buf[k] + d
        p[k] -= lr * buf[k]
print(p)
