"""The workflows: ``train`` (tabular) and ``train_image``, ``evaluate``, ``predict`` and
``predict_image``, over the shared ``run_model`` (reading a trained run back) and ``threshold``.
"""
