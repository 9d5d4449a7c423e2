"""Class names of the dense models' datasets, in the order of their outputs.

- PASCAL VOC segmentation (21): background, then the 20 VOC classes alphabetically.
- COCO detection (81): background, then the 80 COCO object classes in the order of
  their category ids (the contiguous ids the SSD heads predict).
- ADE20K (150): not shipped; classes are named by index ("class 7").
"""

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "dining table", "dog", "horse", "motorbike", "person", "potted plant", "sheep", "sofa", "train",
    "tv/monitor",
)

COCO_CLASSES = (
    "background", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse",
    "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie",
    "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut",
    "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)


def dense_class_names(model):
    """The class names of a DeepLabV3 / SSDLite model: its own `labels` if it carries them,
    else its dataset's when the class count matches, else "class k"."""
    n = model.config.num_classes
    labels = getattr(model, "labels", None)
    if labels and len(labels) == n:
        return list(labels)
    for names in (VOC_CLASSES, COCO_CLASSES):
        if len(names) == n:
            return list(names)
    return [f"class {k}" for k in range(n)]
