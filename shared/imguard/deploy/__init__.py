"""`imguard deploy`: both functions and their Function URLs on Tencent SCF, through the official SDK.

One concern per module, in the order a deployment runs:

- ``inputs``   what the operator gave: ``.env`` and the shell, the deploy credentials, names, sizes
- ``package``  the upload zip of a folder ``make build`` made, and the checks it must pass
- ``upload``   a zip too big to send inline goes to COS first (cos-python-sdk-v5)
- ``plan``     pure: what to create or update, from what is wanted and what SCF has now
- ``scf``      the SCF API calls (tencentcloud-sdk-python-scf), one client, waiting for ``Active``
- ``apply``    runs a plan against ``scf`` and reads the two URLs back
- ``console``  what to paste into the IM and CI consoles afterwards
- ``cli``      the ``imguard deploy`` subcommand

Nothing here runs inside SCF; only ``cli`` is imported by ``imguard.cli``, and it imports
the SDKs only when a deployment actually runs.
"""
