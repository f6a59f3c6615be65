"""Shop orders: their events and the one intake path, the vocabulary, holds, problems and notices,
the sync status, and outside text made safe."""
