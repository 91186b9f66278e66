// KafkaJS ships only gzip; these register the other codecs Kafka defines,
// from pure-JavaScript packages (no native build, nothing downloaded).
import kafkajs from 'kafkajs'
import SnappyCodec from 'kafkajs-snappy'
import lz4 from 'lz4js'
import { ZstdCodec } from 'zstd-codec'

const { CompressionTypes, CompressionCodecs } = kafkajs
const zstd = await new Promise(res => ZstdCodec.run(z => res(new z.Simple())))

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress(encoder) { return Buffer.from(lz4.compress(encoder.buffer)) },
  async decompress(buffer) { return Buffer.from(lz4.decompress(buffer)) },
})
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) { return Buffer.from(zstd.compress(encoder.buffer)) },
  async decompress(buffer) { return Buffer.from(zstd.decompress(buffer)) },
})

export const CODECS = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}
