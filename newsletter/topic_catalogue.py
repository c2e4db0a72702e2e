"""The seed topic catalogue: what appears on Hugging Face Daily Papers.

Loaded by data migrations; admins edit topics afterwards. Each topic: slug, name, area,
a one-line description for the signup form, and its terms (comma-separated phrases,
synonyms and acronyms; an acronym in capitals matches case-sensitively).
"""

from __future__ import annotations

# (slug, name, area, description, terms)
TOPICS: list[tuple[str, str, str, str, str]] = [
    (
        "llms",
        "Large language models",
        "Language",
        "Pretraining, scaling and architectures of LLMs.",
        "large language model, LLM, language model, foundation model, GPT, Llama, Qwen, "
        "scaling law, pretraining, pre-training, decoder-only, mixture of experts, MoE",
    ),
    (
        "reasoning",
        "Reasoning",
        "Language",
        "Chain-of-thought, test-time compute and reasoning models.",
        "reasoning, chain-of-thought, chain of thought, CoT, test-time scaling, test-time "
        "compute, long CoT, reasoning model, o1, DeepSeek-R1, self-reflection, step-by-step, "
        "thinking",
    ),
    (
        "agents",
        "Agents and tool use",
        "Language",
        "LLM agents that plan, browse, call tools and act.",
        "agent, agentic, tool use, tool calling, function calling, web agent, GUI agent, "
        "computer use, multi-agent, planning, deep research, browsing",
    ),
    (
        "rl",
        "Reinforcement learning",
        "Learning",
        "RL algorithms, including RL for LLMs.",
        "reinforcement learning, RL, policy optimization, PPO, GRPO, DPO, reward model, "
        "policy gradient, RLVR, verifiable reward, Q-learning, actor-critic, offline RL",
    ),
    (
        "alignment",
        "Alignment and RLHF",
        "Trust",
        "Preference learning, RLHF, instruction following.",
        "alignment, RLHF, human feedback, preference optimization, preference learning, DPO, "
        "reward hacking, instruction tuning, instruction following, constitutional AI, RLAIF, "
        "helpfulness",
    ),
    (
        "safety",
        "Safety and security",
        "Trust",
        "Jailbreaks, red teaming, robustness and guardrails.",
        "safety, jailbreak, red teaming, red-teaming, adversarial attack, prompt injection, "
        "guardrail, harmful, backdoor, unlearning, privacy, watermark",
    ),
    (
        "interpretability",
        "Interpretability",
        "Trust",
        "What happens inside models: probing, circuits, SAEs.",
        "interpretability, mechanistic interpretability, sparse autoencoder, SAE, probing, "
        "circuit, attribution, explainability, steering vector, activation steering, feature "
        "visualization",
    ),
    (
        "hallucination",
        "Hallucination and factuality",
        "Trust",
        "When models make things up, and fixes.",
        "hallucination, factuality, faithfulness, fact-checking, grounding, calibration, "
        "uncertainty estimation",
    ),
    (
        "evaluation",
        "Evaluation and benchmarks",
        "Methods",
        "New benchmarks, leaderboards, evaluation methods.",
        "benchmark, evaluation, leaderboard, LLM-as-a-judge, judge, arena, evaluation suite, "
        "test set, contamination",
    ),
    (
        "data",
        "Data and datasets",
        "Methods",
        "Datasets, data curation, synthetic data.",
        "dataset, data curation, synthetic data, data generation, data quality, data mixture, "
        "data filtering, annotation, corpus, deduplication",
    ),
    (
        "training",
        "Training and optimisation",
        "Methods",
        "Optimisers, training recipes, stability.",
        "optimizer, optimiser, Adam, AdamW, Muon, learning rate, training stability, "
        "fine-tuning, finetuning, LoRA, PEFT, parameter-efficient, gradient, curriculum",
    ),
    (
        "architectures",
        "Architectures",
        "Methods",
        "Transformers and alternatives: SSMs, linear attention.",
        "transformer, attention mechanism, state space model, SSM, Mamba, linear attention, "
        "RNN, recurrent, positional encoding, RoPE, hybrid architecture",
    ),
    (
        "efficient-inference",
        "Efficient inference",
        "Efficiency",
        "Faster, cheaper serving and decoding.",
        "inference acceleration, efficient inference, speculative decoding, serving, latency, "
        "throughput, token pruning, early exit, inference cost, vLLM, on-device, edge device, "
        "small devices, mobile devices, resource-constrained, memory footprint, cheaper, "
        "lower cost, inference efficiency, efficient LLM, quantization, pruning, "
        "distillation, model compression, low-bit",
    ),
    (
        "quantization",
        "Quantization",
        "Efficiency",
        "Low-bit weights and activations.",
        "quantization, quantized, quantize, low-bit, INT4, INT8, FP8, FP4, PTQ, QAT, GPTQ, "
        "AWQ, post-training quantization, binarization, 1-bit",
    ),
    (
        "compression",
        "Pruning and distillation",
        "Efficiency",
        "Smaller models from bigger ones.",
        "pruning, sparsity, distillation, knowledge distillation, distilled, model "
        "compression, small language model, SLM",
    ),
    (
        "long-context",
        "Long context and KV cache",
        "Efficiency",
        "Long inputs, memory and KV-cache tricks.",
        "long context, long-context, context window, KV cache, KV-cache, context length, "
        "length extrapolation, memory compression, sparse attention, million tokens",
    ),
    (
        "multimodal",
        "Multimodal models and VLMs",
        "Vision",
        "Models that read images, video and text together.",
        "multimodal, vision-language, VLM, MLLM, LVLM, visual question answering, VQA, "
        "image-text, vision language model, omni-modal, interleaved",
    ),
    (
        "image-generation",
        "Image generation",
        "Generation",
        "Text-to-image and image editing.",
        "image generation, text-to-image, image editing, image synthesis, T2I, Stable "
        "Diffusion, FLUX, inpainting, style transfer, personalization",
    ),
    (
        "video-generation",
        "Video generation",
        "Generation",
        "Text-to-video, image-to-video, world simulators.",
        "video generation, text-to-video, image-to-video, video diffusion, T2V, I2V, video "
        "synthesis, video editing, talking head, avatar, world simulator",
    ),
    (
        "diffusion",
        "Diffusion and flow models",
        "Generation",
        "Diffusion, flow matching, score models.",
        "diffusion model, diffusion, denoising, flow matching, rectified flow, score-based, "
        "DiT, diffusion transformer, consistency model, sampling steps",
    ),
    (
        "autoregressive-generation",
        "Autoregressive and unified generation",
        "Generation",
        "Token-based image generation and unified understanding-generation models.",
        "autoregressive image generation, unified model, visual tokenizer, image tokenizer, "
        "VQ-VAE, next-token prediction, unified multimodal, masked generative",
    ),
    (
        "3d",
        "3D and 4D",
        "Vision",
        "3D reconstruction and generation, Gaussian splatting, NeRF.",
        "3D, 4D, Gaussian splatting, 3DGS, NeRF, neural radiance field, mesh, point cloud, 3D "
        "reconstruction, 3D generation, novel view synthesis, depth estimation",
    ),
    (
        "computer-vision",
        "Computer vision",
        "Vision",
        "Detection, segmentation, recognition, tracking.",
        "object detection, segmentation, image classification, visual recognition, tracking, "
        "optical flow, pose estimation, ViT, vision transformer, SAM, CLIP, OCR",
    ),
    (
        "video-understanding",
        "Video understanding",
        "Vision",
        "Models that watch and reason over video.",
        "video understanding, video question answering, video LLM, temporal grounding, long "
        "video, video reasoning, action recognition",
    ),
    (
        "world-models",
        "World models and embodied AI",
        "Robotics",
        "Learned simulators and embodied agents.",
        "world model, embodied, embodied AI, simulation, navigation, physical reasoning, "
        "spatial reasoning",
    ),
    (
        "robotics",
        "Robotics",
        "Robotics",
        "Robot learning, manipulation, vision-language-action models.",
        "robot, robotics, manipulation, VLA, vision-language-action, imitation learning, "
        "humanoid, locomotion, grasping, autonomous driving, policy learning",
    ),
    (
        "speech",
        "Speech and audio",
        "Audio",
        "Speech recognition and synthesis, audio and music.",
        "speech, audio, speech recognition, text-to-speech, speech synthesis, voice, "
        "spoken dialogue, music generation, sound, speaker",
    ),
    (
        "code",
        "Code generation",
        "Applications",
        "Models that write, repair and reason about code.",
        "code generation, coding, code LLM, program synthesis, software engineering, "
        "SWE-bench, bug fixing, repository, compiler, code review",
    ),
    (
        "math",
        "Mathematics",
        "Applications",
        "Math reasoning, theorem proving, formal verification.",
        "mathematical reasoning, math, theorem proving, formal proof, Lean 4, Lean prover, "
        "olympiad, GSM8K, MATH, AIME, geometry",
    ),
    (
        "rag",
        "Retrieval and RAG",
        "Applications",
        "Retrieval-augmented generation, search, embeddings.",
        "retrieval-augmented generation, RAG, retrieval, retriever, dense retrieval, "
        "embedding model, reranking, reranker, search engine, knowledge base, vector database",
    ),
    (
        "medicine",
        "Medicine and health",
        "Applications",
        "Clinical, biomedical and health AI.",
        "medical, clinical, biomedical, healthcare, radiology, pathology, patient, diagnosis, "
        "EHR, drug discovery",
    ),
    (
        "science",
        "AI for science",
        "Applications",
        "Biology, chemistry, physics, materials, climate.",
        "protein, molecule, molecular, chemistry, materials, genomics, physics, weather "
        "forecasting, climate, scientific discovery, AI scientist",
    ),
    (
        "multilingual",
        "Multilingual and low-resource",
        "Language",
        "Beyond English: translation, low-resource languages.",
        "multilingual, cross-lingual, machine translation, low-resource, translation, "
        "language-specific, non-English",
    ),
    (
        "recsys",
        "Recommendation and personalization",
        "Applications",
        "Recommenders, user modelling, personalization.",
        "recommendation, recommender, personalization, personalized, user modeling, "
        "collaborative filtering, click-through",
    ),
    (
        "graphs",
        "Graphs and structured data",
        "Methods",
        "GNNs, tables, knowledge graphs, time series.",
        "graph neural network, GNN, knowledge graph, tabular, table, time series, "
        "forecasting, structured data",
    ),
    (
        "theory",
        "Theory",
        "Methods",
        "Learning theory, generalisation, optimisation theory.",
        "theoretical, theory, generalization bound, convergence, provable, sample complexity, "
        "in-context learning theory, expressivity",
    ),
    (
        "memory-continual",
        "Memory and continual learning",
        "Learning",
        "Models that remember and keep learning.",
        "memory, continual learning, lifelong learning, catastrophic forgetting, "
        "self-evolving, self-improvement, experience replay",
    ),
    (
        "hardware-systems",
        "Systems and hardware",
        "Efficiency",
        "Distributed training, kernels, GPUs.",
        "distributed training, GPU, kernel, CUDA, parallelism, pipeline parallelism, "
        "FlashAttention, hardware, accelerator, cluster",
    ),
]


def term_list(terms: str) -> list[str]:
    return [t.strip() for t in terms.replace("\n", ",").split(",") if t.strip()]


def seed_topics(topic_model: type) -> None:
    """Create or update the catalogue's topics (keyed by slug), leaving topics that
    admins added alone. Used by data migrations, with the historical model."""
    for position, (slug, name, area, description, terms) in enumerate(TOPICS):
        topic_model.objects.update_or_create(  # type: ignore[attr-defined]
            slug=slug,
            defaults={
                "name": name,
                "area": area,
                "description": description,
                "terms": "\n".join(term_list(terms)),
                "position": position,
            },
        )
