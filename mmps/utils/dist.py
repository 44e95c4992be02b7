# Copyright (c) OpenMMLab. All rights reserved.
"""Distributed training on machines without CUDA (gloo)."""
import os
import subprocess

import torch
import torch.distributed as torch_dist


def _slurm_env_to_torchrun_env() -> None:
    """Translate slurm's variables to the ``torchrun`` ones (as mmengine's
    slurm initialisation does, without its ``torch.cuda.set_device``).

    ``MASTER_ADDR`` is the first host of ``SLURM_NODELIST`` (``scontrol show
    hostname``) unless already set; ``MASTER_PORT`` defaults to 29500.
    """
    required = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
    missing = [k for k in required if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher slurm needs the slurm variables '
                           f'{missing}: start with srun or '
                           'tools/slurm_train.sh')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        try:
            hosts = subprocess.run(['scontrol', 'show', 'hostname', node_list],
                                   capture_output=True, text=True,
                                   check=True).stdout.split()
        except (OSError, subprocess.CalledProcessError) as e:
            raise RuntimeError(
                f'--launcher slurm: cannot resolve the master host of '
                f'SLURM_NODELIST={node_list!r} with scontrol ({e}); set '
                'MASTER_ADDR') from e
        os.environ['MASTER_ADDR'] = hosts[0]
    os.environ.setdefault('MASTER_PORT', '29500')


def init_cpu_distributed(launcher: str) -> bool:
    """Start the process group with gloo where there is no CUDA device.

    mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` (it fails
    on CPU-only torch builds) and mmengine's default DDP wrapper passes
    ``device_ids=[LOCAL_RANK]`` (DDP refuses it for CPU modules). When CUDA
    is unavailable and the launcher is ``'pytorch'`` (torchrun: ``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT`` set) or ``'slurm'``
    (srun: ``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_NODELIST``), this
    starts the process group with the gloo backend, so that the runner
    finds it initialised and skips ``init_dist``; mmps's runtime config
    wraps the model without ``device_ids``. With CUDA, mmengine's own
    initialisation (NCCL) runs unchanged.

    Args:
        launcher (str): The ``--launcher`` of the tools.

    Returns:
        bool: Whether this call started the process group.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher not in ('pytorch', 'slurm'):
        raise RuntimeError(
            f'--launcher {launcher} on a machine without CUDA: only '
            '"pytorch" (torchrun, tools/dist_train.sh) and "slurm" '
            '(tools/slurm_train.sh) are supported on CPU')
    if torch_dist.is_initialized():
        return False
    if launcher == 'slurm':
        _slurm_env_to_torchrun_env()
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher pytorch needs the torchrun variables '
                           f'{missing}: start with torchrun or '
                           'tools/dist_train.sh')
    torch_dist.init_process_group(backend='gloo')
    return True


def destroy_distributed() -> None:
    """Tear the process group down at the end of a run, on every rank.

    Without it, the gloo (CPU) or NCCL process group is destroyed by the
    interpreter's exit handlers in no defined order; with gloo a rank can
    then abort (``terminate called without an active exception``) after the
    run has finished, so ``torchrun`` reports a failure. All ranks first wait
    for each other (a barrier), then the group is destroyed. A no-op when no
    process group is initialised.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    torch_dist.barrier()
    torch_dist.destroy_process_group()
