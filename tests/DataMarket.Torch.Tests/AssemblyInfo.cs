// Proxy training seeds torch's process-wide generator (torch.manual_seed) before it creates a model, so two test
// classes creating models at once would draw each other's random numbers and train different models. The classes
// of this assembly run one at a time; giving training a generator of its own is left for the TorchSharp issue.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
