"""Each metric family's options (what ``evaluate_case`` takes by family), one light module per family.

Option classes live in light modules (standard library, numpy and ``errors`` only); a family's heavy
imports (torch, pyiqa, syncnet, onnxruntime, ...) go inside the functions of its metric module that
need them. So a run that enables only PSNR and SSIM builds every family's options without importing any
of them (``tests/test_light_imports.py`` checks it, in the controller and in every xdist worker).
A new family adds ``options/<family>.py`` and one line to ``run_options.family_options``.
"""
