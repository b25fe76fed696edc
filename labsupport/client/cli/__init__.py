"""CloudHSM CLI (Client SDK 5), simulated: AWS's commands, flags, prompts and JSON.

Three ways in, one implementation (:class:`CloudHsmCli`):

* the console scripts ``cloudhsm-cli``, ``configure-cli`` and ``configure-pkcs11`` that
  ``./lab setup`` installs in the lab's virtualenv (on PATH in JupyterLab's terminal) —
  as ``/opt/cloudhsm/bin/cloudhsm-cli`` and ``/opt/cloudhsm/bin/configure-cli`` on an
  EC2 client (:mod:`labsupport.client.cli.main`);
* the notebook magic ``%cloudhsm_cli user list`` / ``%%cloudhsm_cli`` (loaded by
  ``start_lesson``; :mod:`labsupport.client.cli.magic`);
* Python: ``client.cli.run("user list")`` returns a :class:`CliResult`.

Layout: :mod:`.grammar` (the parser and the command registry), :mod:`.attributes`
(attribute names, AWS's defaults per key type), :mod:`.shell` (login state, errors as
``error_code`` 1), :mod:`.families` (one module per command family), :mod:`.backend`
(the only place that reaches into the client layer's internals).
"""

from labsupport.client.cli.grammar import REGISTRY, UsageError
from labsupport.client.cli.result import CliResult
from labsupport.client.cli.shell import CloudHsmCli

__all__ = ["REGISTRY", "CliResult", "CloudHsmCli", "UsageError"]
