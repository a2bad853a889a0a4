#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nswap developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: lab_image
short_description: Build and cache the Debian image of the nswap VM lab
version_added: 0.1.0
description:
  - Builds a Debian image with C(debootstrap) from the mirrors in the controller's apt
    sources, with the kernel ABI that the controller's C(linux-image-amd64) resolves to
    (from the C(-security) suite), its headers, build tools, dkms and benchmark tools.
  - The image is cached under O(cache_dir)C(/images/<suite>-<recipe hash>).  The hash covers
    the package lists, the files written into the image, the mirrors and the kernel ABI, so a
    changed recipe builds a new image and an unchanged one is reused.
  - The build takes about 6 minutes on 2 cores; its steps are logged to RV(log).
  - Must run on the controller as root (debootstrap, chroot).
author:
  - nswap developers (@nswap)
extends_documentation_fragment:
  - nswap.cluster.attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the image would be built or removed; builds and removes
      nothing.
  diff_mode:
    support: none
options:
  cache_dir:
    description: Directory that holds cached images.
    type: path
    default: ~/.cache/nswap
  state:
    description:
      - V(present) builds the image if no complete image of the current recipe is cached.
      - V(absent) removes every cached image and partial build.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Build (or reuse) the lab image
  nswap.cluster.lab_image:
  register: lab_image

- name: Drop all cached lab images
  nswap.cluster.lab_image:
    state: absent
"""

RETURN = r"""
key:
  description: Suite and recipe hash naming the image.
  returned: state=present
  type: str
  sample: bookworm-66ae714c53013aa4
dir:
  description: Directory of the image.
  returned: state=present
  type: str
base:
  description: Root file system image (qcow2), the backing file of every VM overlay.
  returned: state=present
  type: str
kernel:
  description: Kernel booted directly by QEMU.
  returned: state=present
  type: str
initrd:
  description: Initramfs of that kernel.
  returned: state=present
  type: str
sshkey:
  description: Private key authorized for root in the image.
  returned: state=present
  type: str
kernel_abi:
  description: Kernel ABI of the image, e.g. 6.1.0-56-amd64.
  returned: state=present
  type: str
log:
  description: Build log.
  returned: state=present
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.nswap.cluster.plugins.module_utils.lab import image
from ansible_collections.nswap.cluster.plugins.module_utils.lab.common import LabError, remove_tree


def remove_images(cache_dir, check_mode):
    images = os.path.join(cache_dir, "images")
    if not os.path.isdir(images) or not os.listdir(images):
        return False
    if not check_mode:
        image.sweep_partial_builds(cache_dir)
        image.unmount_below(images)
        remove_tree(images)
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cache_dir=dict(type="path", default="~/.cache/nswap"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    cache_dir = module.params["cache_dir"]  # type=path: "~" already expanded
    try:
        if module.params["state"] == "absent":
            module.exit_json(changed=remove_images(cache_dir, module.check_mode))
        changed, info = image.ensure_image(cache_dir, check_mode=module.check_mode)
    except LabError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=changed, **info)


if __name__ == "__main__":
    main()
