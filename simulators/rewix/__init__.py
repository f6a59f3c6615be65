"""A simulated Rewix supplier platform speaking the protocol of docs/rewix-api.md strictly."""
from simulators.rewix.control import SimulatorControl
from simulators.rewix.server import SimulatorServer, start_in_thread
from simulators.rewix.state import SimulatorState

__all__ = ["SimulatorControl", "SimulatorServer", "SimulatorState", "start_in_thread"]
