"""A 2-layer MLP (Keras 3 on torch) fit for 3 epochs of 8 batches, batch logs every 2 steps."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported

import keras
import numpy as np
from common import SYSTEM, URI, report

from runstream.sdk.integrations.keras import RunstreamCallback

keras.utils.set_random_seed(0)
x, y = np.random.default_rng(0).normal(size=(2, 80, 4)).astype("float32")
y = y[:, :1]
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
callback = RunstreamCallback(experiment="keras", tracking_uri=URI, log_every_n_steps=2, **SYSTEM)
history = model.fit(x, y, batch_size=8, epochs=3, validation_split=0.2, verbose=0, callbacks=[callback])
report(callback.run, history=history.history, backend=keras.backend.backend())
