"""Run an Ansible module's main() in-process and capture exit_json/fail_json."""

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super().__init__(result.get("msg", ""))
        self.result = result
        self.failed = failed


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise ModuleExit(kwargs, failed=False)


def _fail_json(self, msg, **kwargs):
    kwargs["msg"] = msg
    raise ModuleExit(kwargs, failed=True)


def run_module(monkeypatch, module, args, check_mode=False):
    """Return (failed, result) of `module.main()` with `args`."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    with patch_module_args(json.loads(json.dumps(args))):
        with pytest.raises(ModuleExit) as info:
            module.main()
    return info.value.failed, info.value.result
