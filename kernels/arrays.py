"""The one door from ``gpunn.kernels`` back into gpunn: what an array is, and where it lives.

Kernels, their launch and their checks need three facts about an array: its namespace (``numpy`` or
``cupy``), its device, and that device as a context to compute in. ``gpunn.devices`` knows them (the
backend decision is made there, once); every kernel file asks through this module and imports nothing
else from gpunn.
"""

from gpunn.devices import Device, array_module, device_of  # noqa: F401
