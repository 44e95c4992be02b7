# Copyright (c) OpenMMLab. All rights reserved.
"""mmps registries: children of MMDetection's registry nodes.

Every node is a child of the same-named mmdet node, so an unprefixed mmdet type
(``Resize``, ``RPNHead``, ``MaxIoUAssigner`` ...) builds inside an mmps config (with
``default_scope = 'mmps'``), nested configs included. ``locations`` list the mmdet
sub-package first (a child registry only imports its own locations, so this is what
registers mmdet's modules for lookups through the parent) and then mmps's own.

Never give an mmps class the name of an mmdet one: the child would silently shadow it.
"""
from mmdet.registry import (
    RUNNERS as MMDET_RUNNERS,
    RUNNER_CONSTRUCTORS as MMDET_RUNNER_CONSTRUCTORS,
    LOOPS as MMDET_LOOPS,
    HOOKS as MMDET_HOOKS,
    DATASETS as MMDET_DATASETS,
    DATA_SAMPLERS as MMDET_DATA_SAMPLERS,
    TRANSFORMS as MMDET_TRANSFORMS,
    MODELS as MMDET_MODELS,
    MODEL_WRAPPERS as MMDET_MODEL_WRAPPERS,
    WEIGHT_INITIALIZERS as MMDET_WEIGHT_INITIALIZERS,
    OPTIMIZERS as MMDET_OPTIMIZERS,
    OPTIM_WRAPPERS as MMDET_OPTIM_WRAPPERS,
    OPTIM_WRAPPER_CONSTRUCTORS as MMDET_OPTIM_WRAPPER_CONSTRUCTORS,
    PARAM_SCHEDULERS as MMDET_PARAM_SCHEDULERS,
    METRICS as MMDET_METRICS,
    EVALUATOR as MMDET_EVALUATOR,
    TASK_UTILS as MMDET_TASK_UTILS,
    VISUALIZERS as MMDET_VISUALIZERS,
    VISBACKENDS as MMDET_VISBACKENDS,
    LOG_PROCESSORS as MMDET_LOG_PROCESSORS,
)
from mmengine.registry import Registry


RUNNERS = Registry(
    'runner',
    parent=MMDET_RUNNERS,
    scope='mmps',
    locations=['mmdet.engine.runner', 'mmps.engine'])
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor',
    parent=MMDET_RUNNER_CONSTRUCTORS,
    scope='mmps',
    locations=['mmdet.engine.runner', 'mmps.engine'])
LOOPS = Registry(
    'loop',
    parent=MMDET_LOOPS,
    scope='mmps',
    locations=['mmdet.engine.runner', 'mmps.engine'])
HOOKS = Registry(
    'hook',
    parent=MMDET_HOOKS,
    scope='mmps',
    locations=['mmdet.engine.hooks', 'mmps.engine.hooks'])
DATASETS = Registry(
    'dataset',
    parent=MMDET_DATASETS,
    scope='mmps',
    locations=['mmdet.datasets', 'mmps.datasets.registered'])
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=MMDET_DATA_SAMPLERS,
    scope='mmps',
    locations=['mmdet.datasets.samplers',
               'mmps.datasets.registered'])
TRANSFORMS = Registry(
    'transform',
    parent=MMDET_TRANSFORMS,
    scope='mmps',
    locations=['mmdet.datasets.transforms', 'mmps.datasets.transforms'])
MODELS = Registry(
    'model',
    parent=MMDET_MODELS,
    scope='mmps',
    locations=['mmdet.models', 'mmps.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMDET_MODEL_WRAPPERS,
    scope='mmps',
    locations=['mmdet.models', 'mmps.models'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer',
    parent=MMDET_WEIGHT_INITIALIZERS,
    scope='mmps',
    locations=['mmdet.models', 'mmps.models'])
OPTIMIZERS = Registry(
    'optimizer',
    parent=MMDET_OPTIMIZERS,
    scope='mmps',
    locations=['mmdet.engine.optimizers', 'mmps.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMDET_OPTIM_WRAPPERS,
    scope='mmps',
    locations=['mmdet.engine.optimizers', 'mmps.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer constructor',
    parent=MMDET_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='mmps',
    locations=['mmdet.engine.optimizers', 'mmps.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler',
    parent=MMDET_PARAM_SCHEDULERS,
    scope='mmps',
    locations=['mmdet.engine.schedulers', 'mmps.engine'])
METRICS = Registry(
    'metric',
    parent=MMDET_METRICS,
    scope='mmps',
    locations=['mmdet.evaluation', 'mmps.evaluation.metrics'])
EVALUATOR = Registry(
    'evaluator',
    parent=MMDET_EVALUATOR,
    scope='mmps',
    locations=['mmdet.evaluation', 'mmps.evaluation.metrics'])
TASK_UTILS = Registry(
    'task util',
    parent=MMDET_TASK_UTILS,
    scope='mmps',
    locations=['mmdet.models', 'mmps.models'])
VISUALIZERS = Registry(
    'visualizer',
    parent=MMDET_VISUALIZERS,
    scope='mmps',
    locations=['mmdet.visualization', 'mmps.engine'])
VISBACKENDS = Registry(
    'vis_backend',
    parent=MMDET_VISBACKENDS,
    scope='mmps',
    locations=['mmdet.visualization', 'mmps.engine'])
LOG_PROCESSORS = Registry(
    'log_processor',
    parent=MMDET_LOG_PROCESSORS,
    scope='mmps',
    locations=['mmdet.engine', 'mmps.engine'])
