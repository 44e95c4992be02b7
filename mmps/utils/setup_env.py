# Copyright (c) OpenMMLab. All rights reserved.
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register all modules of mmdet and mmps into their registries.

    Args:
        init_default_scope (bool): Whether to set the default scope to
            ``'mmps'`` so that unprefixed types resolve in mmps's registries
            first and then in mmdet's and mmengine's. Defaults to True.
    """
    from mmdet.utils import register_all_modules as register_mmdet_modules
    register_mmdet_modules(init_default_scope=False)

    import mmps.datasets.registered  # noqa: F401,F403
    import mmps.engine  # noqa: F401,F403
    import mmps.evaluation.metrics  # noqa: F401,F403
    import mmps.models  # noqa: F401,F403

    if init_default_scope:
        never_created = DefaultScope.get_current_instance() is None \
            or not DefaultScope.check_instance_created('mmps')
        if never_created:
            DefaultScope.get_instance('mmps', scope_name='mmps')
            return
        current_scope = DefaultScope.get_current_instance()
        if current_scope.scope_name != 'mmps':
            warnings.warn('The current default scope '
                          f'"{current_scope.scope_name}" is not "mmps", '
                          '`register_all_modules` will force the current'
                          'default scope to be "mmps". If this is not '
                          'expected, please set `init_default_scope=False`.')
            # avoid name conflict
            new_instance_name = f'mmps-{datetime.datetime.now()}'
            DefaultScope.get_instance(new_instance_name, scope_name='mmps')
