"""SSDlite320 with MobileNetV3-Large: torchvision's detector written in Gluon, converted exactly."""
