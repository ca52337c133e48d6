"""nnU-Net training sets and the baselines: conversion, planning, the trainer."""
